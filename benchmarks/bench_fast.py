"""Speed and memory of the SmoothNMF backends (reference, fast) and scikit-learn's KL NMF.

Every measurement runs in its own subprocess, so its peak RSS (``ru_maxrss``) is that of
one solver on one data set, imports included. Per case it records:

- ``seconds_per_iteration``: ``(t(n_long) - t(n_short)) / (n_long - n_short)`` from two
  fits with ``tol=0`` (start-up and initialisation cancel out);
- ``seconds_to_convergence``, ``n_iter``: one fit with each tool's own stopping rule
  (``tol=1e-4``), initialisation included;
- ``objective``: F of the converged fit, evaluated for every tool with the same float64
  reference ``objective_terms`` (so the tools are comparable);
- ``peak_rss_mb``: the subprocess's peak resident memory;
- for the fast backend, ``stream_seconds``: one pass that only reads the nonzeros
  (the per-pass lower bound), and ``bound_ratio`` = seconds per iteration / stream_seconds.

Data: synthetic spectrum images (3 phases, 2000 channels, ~300 counts per pixel, a
12-column physics-like G) and the real files of ../shared/realdata.

Run (about 20 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_fast.py --out benchmarks/results/bench_fast.json

``--sizes 64`` and ``--no-real`` give a quick run.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO / ".." / "shared" / "realdata"
DATA_DIR = Path(os.environ.get("ESPM_BENCH_DATA", Path(tempfile.gettempdir()) / "espm_cli_bench"))

N_CHANNELS = 2000
N_COMPONENTS = 3
COUNTS_PER_PIXEL = 300.0
N_ELEMENTS = 10
TOL = 1e-4
# "physics": G, Laplacian, log sparsity, simplex on H (lambda_L in our convention, which is
# twice espm's: ours is (lambda_L / 2) tr(H Δ Hᵀ)). "plain": KL-NMF, G = identity.
CONFIGS = {
    "physics": dict(lambda_L=2.0, mu=0.1, simplex="H"),
    "plain": dict(lambda_L=0.0, mu=0.0, simplex=None),
}
REAL_FILES = [
    "88_ES-LP_G8_selection2_cropped2.hspy",
    "30x30_instructively_packed_16bit_compressed.bcf",
    "bcf_v2_50x50px.bcf",
    "Hitachi_TM3030Plus.bcf",
    "test_TEM.bcf",
    "velox_Test_SI_16x16_215kx.emd",
    "View000_0000006.pts",
]


# ----------------------------------------------------------------------------- data


def synthetic_physics_matrix(n_channels=N_CHANNELS, n_elements=N_ELEMENTS, seed=7):
    """(G, continuum mask): Gaussian lines per element column, then two continuum columns."""
    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    columns = []
    for _ in range(n_elements):
        column = np.zeros(n_channels)
        for _line in range(rng.integers(1, 4)):
            centre = rng.uniform(0.03, 0.9) * n_channels
            width = 3.0 + 4.0 * centre / n_channels  # detector resolution grows with energy
            column += rng.uniform(0.2, 1.0) * np.exp(-0.5 * ((channels - centre) / width) ** 2)
        columns.append(column / column.sum())
    ramp = (channels + 1) / n_channels
    continuum = [np.exp(-4.0 * ramp) * (0.05 + ramp), 0.2 + np.sqrt(ramp) * np.exp(-2 * ramp)]
    columns += [c / c.sum() for c in continuum]
    return np.column_stack(columns), np.array([False] * n_elements + [True] * 2)


def synthetic_maps(side, n_components=N_COMPONENTS, seed=0):
    """Smooth abundance maps (k, side*side) on the simplex: softmax of blurred noise."""
    rng = np.random.default_rng(seed)
    frequencies = np.fft.fftfreq(side)
    radius2 = frequencies[:, None] ** 2 + frequencies[None, :] ** 2
    kernel = np.exp(-radius2 * (side / 6.0) ** 2)
    fields = []
    for _ in range(n_components):
        noise = rng.standard_normal((side, side))
        field = np.real(np.fft.ifft2(np.fft.fft2(noise) * kernel))
        fields.append(field / field.std())
    fields = np.array(fields) * 3.0
    maps = np.exp(fields - fields.max(axis=0))
    return (maps / maps.sum(axis=0)).reshape(n_components, side * side)


def synthetic_counts(side, seed=0):
    """X (side*side, N_CHANNELS) as CSR uint16, ~300 counts per pixel; and its G."""
    rng = np.random.default_rng(seed)
    G, continuum = synthetic_physics_matrix()
    W = np.zeros((G.shape[1], N_COMPONENTS))
    for k in range(N_COMPONENTS):
        elements = rng.choice(N_ELEMENTS, size=4, replace=False)
        W[elements, k] = rng.dirichlet(np.ones(4))
        W[~continuum, k] *= 0.7
        W[continuum, k] = [0.2, 0.1]
    H = synthetic_maps(side, seed=seed)
    spectra = G @ W  # (c, k), each column sums to 1
    rows = []
    for start in range(0, H.shape[1], 4096):  # never the dense float model of all pixels
        block = COUNTS_PER_PIXEL * (H[:, start:start + 4096].T @ spectra.T)
        rows.append(sp.csr_matrix(rng.poisson(block).astype(np.uint16)))
    return sp.vstack(rows).tocsr(), G, continuum


def synthetic_path(side):
    return DATA_DIR / f"synthetic_{side}x{side}x{N_CHANNELS}.npz"


def ensure_synthetic(side):
    """Write the synthetic data set of this size once; return its path."""
    path = synthetic_path(side)
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        X, G, continuum = synthetic_counts(side)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape, G=G,
                 continuum=continuum, shape_2d=(side, side))
        tmp.rename(path)
    return path


def load_synthetic(side):
    stored = np.load(ensure_synthetic(side))
    X = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]),
                      shape=tuple(stored["shape"]))
    return X, stored["G"], stored["continuum"], tuple(int(v) for v in stored["shape_2d"])


def load_real(name):
    """X (pixels, channels) as CSR without a dense float copy; shape_2d."""
    warnings.filterwarnings("ignore")
    import hyperspy.api as hs

    from espm_cli.solver._sparse_data import pixel_nonzeros_from_array

    loaded = hs.load(str(REALDATA / name), lazy=True)
    candidates = loaded if isinstance(loaded, list) else [loaded]
    signal = next(s for s in candidates if s.data.ndim == 3)
    data = signal.data
    shape_2d = tuple(int(v) for v in data.shape[:2])
    X = pixel_nonzeros_from_array(data.reshape((-1, data.shape[-1]))).to_scipy()
    return X, shape_2d


def load_dataset(dataset):
    """(X csr (p, c), G or None, continuum or None, shape_2d) of a named data set."""
    if dataset.startswith("synthetic_"):
        return load_synthetic(int(dataset.split("_")[1]))
    X, shape_2d = load_real(dataset)
    return X, None, None, shape_2d


# ----------------------------------------------------------------------------- one case


def _objective(X, G, W, H, config, shape_2d):
    """F of (W, H), float64 reference objective."""
    from espm_cli.solver import counts, reference

    data = counts.prepare_counts(X, np.float64)
    G = np.eye(X.shape[1]) if G is None else G
    terms = reference.objective_terms(data, G, W.astype(np.float64), H.astype(np.float64),
                                      shape_2d=shape_2d, lambda_L=config["lambda_L"],
                                      mu=np.full(H.shape[0], config["mu"]), epsilon_reg=1.0)
    return float(terms.sum())


def _smooth_nmf(backend, X, G, continuum, shape_2d, config, max_iter, tol):
    from sklearn.exceptions import ConvergenceWarning

    from espm_cli.solver import SmoothNMF

    estimator = SmoothNMF(N_COMPONENTS, G=G, G_continuum=continuum, shape_2d=shape_2d,
                          max_iter=max_iter, tol=tol, random_state=0, backend=backend, **config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - start
    return seconds, estimator.n_iter_, estimator.W_, estimator.H_


def _sklearn_nmf(X, max_iter, tol):
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    estimator = NMF(N_COMPONENTS, beta_loss="kullback-leibler", solver="mu", init="nndsvda",
                    max_iter=max_iter, tol=tol, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        H_t = estimator.fit_transform(X.astype(np.float64))
        seconds = time.perf_counter() - start
    return seconds, estimator.n_iter_, estimator.components_.T, H_t.T


def run_case(case):
    """Measure one (data set, solver, config) in this process; return a dict."""
    started = time.perf_counter()
    X, G, continuum, shape_2d = load_dataset(case["dataset"])
    load_seconds = time.perf_counter() - started
    config = CONFIGS[case["config"]]
    if case["config"] == "plain":
        G, continuum = None, None
    solver = case["solver"]
    result = dict(case, n_pixels=X.shape[0], n_channels=X.shape[1], nnz=int(X.nnz),
                  load_seconds=round(load_seconds, 3))
    if solver == "sklearn":
        def fit(max_iter, tol):
            return _sklearn_nmf(X, max_iter, tol)
    else:
        def fit(max_iter, tol):
            return _smooth_nmf(solver, X, G, continuum, shape_2d, config, max_iter, tol)
    if solver == "numba":
        from espm_cli.solver import _numba_backend

        data = _numba_backend.prepare_counts(X)
        result["stream_seconds"] = _numba_backend.stream_nonzeros_seconds(data)
        result["n_threads"] = _numba_backend._n_threads()
        del data
        fit(2, 0.0)  # compile or load the cached kernels before timing
    n_short, n_long = case["n_short"], case["n_long"]
    t_short = fit(n_short, 0.0)[0]
    t_long = fit(n_long, 0.0)[0]
    result["seconds_per_iteration"] = (t_long - t_short) / (n_long - n_short)
    if case.get("converge", True):
        seconds, n_iter, W, H = fit(case["max_iter"], case.get("tol", TOL))
        result.update(seconds_to_convergence=seconds, n_iter=int(n_iter))
        result["objective"] = _objective(X, G, W, H, config if solver != "sklearn"
                                         else CONFIGS["plain"], shape_2d)
    if "stream_seconds" in result:
        result["bound_ratio"] = result["seconds_per_iteration"] / result["stream_seconds"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_case_in_subprocess(case, timeout):
    """Run :func:`run_case` in a fresh interpreter; its peak RSS is the case's own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   cwd=REPO)
    except subprocess.TimeoutExpired:
        return dict(case, error=f"timed out after {timeout} s")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return dict(case, error=completed.stderr.strip().splitlines()[-1:] or "no output")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- plan


def plan(sizes, real, solvers):
    """The cases to run, smallest first."""
    cases = []
    for side in sizes:
        dataset = f"synthetic_{side}"
        slow = side >= 256
        for solver in solvers:
            if solver == "sklearn":
                continue
            n_short, n_long = (2, 7) if (solver == "reference" and slow) else (5, 25)
            cases.append(dict(dataset=dataset, config="physics", solver=solver,
                              n_short=n_short, n_long=n_long,
                              max_iter=300 if solver == "reference" and slow else 1000))
        for solver in solvers:
            n_short, n_long = (2, 7) if (solver == "reference" and slow) else (5, 25)
            cases.append(dict(dataset=dataset, config="plain", solver=solver, n_short=n_short,
                              n_long=n_long, max_iter=1000,
                              converge=not (solver == "reference" and slow)))
    if real:
        for name in REAL_FILES:
            for solver in solvers:
                big = name.endswith(".pts")
                cases.append(dict(dataset=name, config="plain", solver=solver,
                                  n_short=2 if big and solver != "numba" else 5,
                                  n_long=7 if big and solver != "numba" else 25,
                                  max_iter=200 if big else 1000,
                                  tol=0.0 if big else TOL))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--solvers", default="numba,reference,sklearn")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_fast.json"))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for side in sizes:
        ensure_synthetic(side)
    results = []
    for case in plan(sizes, not args.no_real, args.solvers.split(",")):
        result = run_case_in_subprocess(case, args.timeout)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                                python=platform.python_version()),
                   command=" ".join(sys.argv), counts_per_pixel=COUNTS_PER_PIXEL,
                   n_components=N_COMPONENTS, configs=CONFIGS, results=results)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.rename(out)


if __name__ == "__main__":
    main()
