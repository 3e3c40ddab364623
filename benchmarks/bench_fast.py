"""Speed and memory of the SmoothNMF backends (reference, fast) and scikit-learn's KL NMF.

Every measurement runs in its own subprocess, so its peak RSS (``VmHWM``) is that of
one solver on one data set, imports included. Per case it records:

- ``seconds_per_iteration``: for SmoothNMF (both backends) the time spent in the update
  loop of a ``tol=0`` fit of ``n_long`` iterations, divided by ``n_long`` (best of two
  fits); for scikit-learn ``(t(n_long) - t(n_short)) / (n_long - n_short)`` from two fits
  (start-up and initialisation cancel out);
- ``seconds_to_convergence``, ``n_iter``: one fit with each tool's own stopping rule
  (``tol=1e-4``), initialisation included;
- ``objective``: F of the converged fit, evaluated for every tool with the same float64
  reference ``objective_terms`` (so the tools are comparable);
- ``peak_rss_mb``: the subprocess's peak resident memory (``VmHWM``; see
  :func:`peak_rss_mb`), taken before the objective evaluation;
- for the fast backend, ``stream_seconds``: one pass that only reads the nonzeros
  (the per-pass lower bound), and ``bound_ratio`` = seconds per iteration / stream_seconds.

Data: synthetic spectrum images (3 phases, 2000 channels, ~300 counts per pixel, a
12-column physics-like G) and the real files of ../shared/realdata.

Run (about 20 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_fast.py --out benchmarks/results/bench_fast.json

``--sizes 64`` and ``--no-real`` give a quick run; ``--tables`` prints the markdown
tables of docs/performance.md from the committed JSON.
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
# Single-threaded OpenBLAS: faster here for the tall-skinny products of the start and of
# the reference backend (see the thread study); the CLI sets the same at start-up.
CHILD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}
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
        block = COUNTS_PER_PIXEL * (H[:, start : start + 4096].T @ spectra.T)
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
        np.savez(
            tmp,
            data=X.data,
            indices=X.indices,
            indptr=X.indptr,
            shape=X.shape,
            G=G,
            continuum=continuum,
            shape_2d=(side, side),
        )
        tmp.rename(path)
    return path


def load_synthetic(side):
    stored = np.load(ensure_synthetic(side))
    X = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=tuple(stored["shape"]))
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
    source = _sparse_source(data)
    if source is not None:  # JEOL .pts: rosettasciio keeps the events as a pydata COO
        data = source
    X = pixel_nonzeros_from_array(data.reshape((-1, data.shape[-1]))).to_scipy()
    return X, shape_2d


def _sparse_source(lazy):
    """The pydata-sparse array a lazy signal wraps whole (``da.from_array``), if any."""
    import sparse

    graph = lazy.__dask_graph__()
    for layer in graph.layers.values():
        for value in layer.values():
            if isinstance(value, sparse.SparseArray) and value.shape == lazy.shape:
                return value
    return None


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
    terms = reference.objective_terms(
        data,
        G,
        W.astype(np.float64),
        H.astype(np.float64),
        shape_2d=shape_2d,
        lambda_L=config["lambda_L"],
        mu=np.full(H.shape[0], config["mu"]),
        epsilon_reg=1.0,
    )
    return float(terms.sum())


_LOOP_SECONDS = []


def peak_rss_mb():
    """This process's peak resident memory in MB.

    ``VmHWM`` from /proc/self/status where available: it belongs to the program's own
    address space, whereas Linux carries ``ru_maxrss`` over from the parent through
    fork/exec (a child started by a large parent would report the parent's size).
    Elsewhere ``resource.getrusage(...).ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time_the_loop():
    """Record the seconds spent in the estimator's update loop (not the start)."""
    from espm_cli.solver import fit_loop as module

    if getattr(module.run_updates, "timed", False):
        return
    original = module.run_updates

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        _LOOP_SECONDS.append(time.perf_counter() - start)
        return out

    timed.timed = True
    module.run_updates = timed


def _smooth_nmf(backend, X, G, continuum, shape_2d, config, max_iter, tol):
    from sklearn.exceptions import ConvergenceWarning

    from espm_cli.solver import SmoothNMF

    _time_the_loop()

    estimator = SmoothNMF(
        N_COMPONENTS,
        G=G,
        G_continuum=continuum,
        shape_2d=shape_2d,
        max_iter=max_iter,
        tol=tol,
        random_state=0,
        backend=backend,
        **config,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - start
    return seconds, estimator.n_iter_, estimator.W_, estimator.H_


def _sklearn_nmf(X, max_iter, tol):
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    estimator = NMF(
        N_COMPONENTS,
        beta_loss="kullback-leibler",
        solver="mu",
        init="nndsvda",
        max_iter=max_iter,
        tol=tol,
        random_state=0,
    )
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
    result = dict(
        case, n_pixels=X.shape[0], n_channels=X.shape[1], nnz=int(X.nnz), load_seconds=round(load_seconds, 3)
    )
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
    if solver == "sklearn":
        t_short = fit(n_short, 0.0)[0]
        t_long = fit(n_long, 0.0)[0]
        result["seconds_per_iteration"] = (t_long - t_short) / (n_long - n_short)
    else:  # the loop alone is timed: best of two fits of n_long iterations
        fit(n_long, 0.0)
        fit(n_long, 0.0)
        result["seconds_per_iteration"] = min(_LOOP_SECONDS[-2:]) / n_long
    W = H = None
    if case.get("converge", True):
        seconds, n_iter, W, H = fit(case["max_iter"], case.get("tol", TOL))
        result.update(seconds_to_convergence=seconds, n_iter=int(n_iter))
    if "stream_seconds" in result:
        result["bound_ratio"] = result["seconds_per_iteration"] / result["stream_seconds"]
    # The peak of the solver runs, before the (memory-hungry) reference objective below.
    result["peak_rss_mb"] = peak_rss_mb()
    if W is not None:
        result["objective"] = _objective(
            X, G, W, H, config if solver != "sklearn" else CONFIGS["plain"], shape_2d
        )
    return result


def run_case_in_subprocess(case, timeout):
    """Run :func:`run_case` in a fresh interpreter; its peak RSS is the case's own.

    The child gets ``CHILD_ENVIRONMENT`` (what the CLI sets at start-up), recorded in the
    result.
    """
    return dict(_run_child(case, CHILD_ENVIRONMENT, timeout), environment=CHILD_ENVIRONMENT)


# ----------------------------------------------------------------------------- threads


THREAD_MODES = {
    # name: (environment, driver)
    "pool_1_thread": ({"NUMBA_NUM_THREADS": "1"}, "pool"),
    "pool_2_threads": ({"NUMBA_NUM_THREADS": "2"}, "pool"),
    "prange_omp": ({"NUMBA_THREADING_LAYER": "omp"}, "prange"),
    "prange_omp_passive": ({"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "passive"}, "prange"),
    "prange_workqueue": ({"NUMBA_THREADING_LAYER": "workqueue"}, "prange"),
}


def _prange_runners():
    """numba ``parallel=True`` loops over the blocks: the alternative to the thread pool."""
    from numba import njit, prange

    from espm_cli.solver import _numba_kernels as kernels

    @njit(parallel=True)
    def ratio_all(pixel_start, channel_index, counts, B, H, block_start, weighted_ratio, log_partial):
        for block in prange(block_start.shape[0] - 1):
            kernels.count_ratio_pass(
                pixel_start,
                channel_index,
                counts,
                B,
                H,
                block_start,
                block,
                block + 1,
                weighted_ratio,
                log_partial,
            )

    @njit(parallel=True)
    def update_all(
        pixel_start,
        channel_index,
        counts,
        B,
        b,
        H,
        weighted_ratio,
        mu,
        epsilon_reg,
        lambda_L,
        rows,
        cols,
        simplex,
        fixed,
        eps,
        block_start,
        H_new,
        partial,
        row_sums,
    ):
        for block in prange(block_start.shape[0] - 1):
            kernels.h_update_pass(
                pixel_start,
                channel_index,
                counts,
                B,
                b,
                H,
                weighted_ratio,
                mu,
                epsilon_reg,
                lambda_L,
                rows,
                cols,
                simplex,
                fixed,
                eps,
                block_start,
                block,
                block + 1,
                H_new,
                partial,
                row_sums,
            )

    return ratio_all, update_all


def thread_case(side, driver, n_iterations=30):
    """Seconds per iteration (H step + W step + objective) of the fast kernels."""
    import numba

    from espm_cli.solver import _numba_backend as fast
    from espm_cli.solver.grid import laplacian_energy

    X, G, _, shape_2d = load_synthetic(side)
    data = fast.prepare_counts(X)
    nz = data.nonzeros
    rng = np.random.default_rng(0)
    W = rng.uniform(0.1, 1.0, (G.shape[1], N_COMPONENTS))
    H = rng.dirichlet(np.ones(N_COMPONENTS), X.shape[0]).T.copy()
    mu = np.full(N_COMPONENTS, 0.1)
    regularisation = dict(shape_2d=shape_2d, lambda_L=2.0, mu=mu, epsilon_reg=1.0)
    if driver == "pool":

        def iteration(W, H):
            H = fast.h_step(data, G, W, H, simplex=True, **regularisation)
            W = fast.w_step(data, G, W, H)
            fast.objective_terms(data, G, W, H, **regularisation)
            return W, H
    else:
        ratio_all, update_all = _prange_runners()

        def iteration(W, H):
            B = fast._model_spectra(data, G, W)
            weighted_ratio = np.empty(H.shape)
            log_partial = np.zeros(data.n_blocks)
            ratio_all(
                nz.pixel_start,
                nz.channel_index,
                nz.counts,
                B,
                H,
                data.block_start,
                weighted_ratio,
                log_partial,
            )
            H_new = np.empty(H.shape)
            partial = np.empty((data.n_blocks, nz.n_channels, B.shape[1]))
            row_sums = np.empty((data.n_blocks, N_COMPONENTS))
            update_all(
                nz.pixel_start,
                nz.channel_index,
                nz.counts,
                B,
                B[:, :N_COMPONENTS].sum(axis=0),
                H,
                weighted_ratio,
                mu,
                1.0,
                2.0,
                shape_2d[0],
                shape_2d[1],
                True,
                fast._EMPTY_FIXED,
                1e-10,
                data.block_start,
                H_new,
                partial,
                row_sums,
            )
            numerator = W * (G.T @ partial.sum(axis=0)[:, :N_COMPONENTS])
            W = np.maximum(numerator / np.outer(G.sum(axis=0), row_sums.sum(axis=0)), 1e-10)
            laplacian_energy(H_new, shape_2d)  # the serial numpy part of the objective
            return W, H_new

    W, H = iteration(W, H)  # compile
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n_iterations):
            W, H = iteration(W, H)
        best = min(best, (time.perf_counter() - start) / n_iterations)
    layer = numba.threading_layer() if driver == "prange" else "none (Python threads)"
    return dict(
        side=side,
        driver=driver,
        threading_layer=layer,
        seconds_per_iteration=best,
        cpu_seconds=time.process_time(),
    )


def blas_case(side, n_iterations=5):
    """Seconds per iteration of the reference backend (dense BLAS products)."""
    from espm_cli.solver import reference
    from espm_cli.solver.counts import prepare_counts

    X, G, _, shape_2d = load_synthetic(side)
    data = prepare_counts(X, np.float64)
    rng = np.random.default_rng(0)
    W = rng.uniform(0.1, 1.0, (G.shape[1], N_COMPONENTS))
    H = rng.dirichlet(np.ones(N_COMPONENTS), X.shape[0]).T.copy()
    regularisation = dict(shape_2d=shape_2d, lambda_L=2.0, mu=np.full(N_COMPONENTS, 0.1), epsilon_reg=1.0)
    best = np.inf
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(n_iterations):
            H = reference.h_step(data, G, W, H, simplex=True, **regularisation)
            W = reference.w_step(data, G, W, H)
            reference.objective_terms(data, G, W, H, **regularisation)
        best = min(best, (time.perf_counter() - start) / n_iterations)
    return dict(side=side, backend="reference", seconds_per_iteration=best)


def thread_study(sizes, out):
    """Every thread setting in its own process (the settings are read at start-up)."""
    results = []
    for side in sizes:
        ensure_synthetic(side)
        for name, (environment, driver) in THREAD_MODES.items():
            result = _run_child(dict(study="threads", side=side, driver=driver), environment)
            results.append(dict(result, mode=name, environment=environment))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        for threads in ("1", "2"):
            environment = {"OPENBLAS_NUM_THREADS": threads}
            result = _run_child(dict(study="blas", side=side), environment)
            results.append(dict(result, mode=f"openblas_{threads}", environment=environment))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    _write_json(out, dict(machine=_machine(), command=" ".join(sys.argv), results=results))


def _run_child(case, environment, timeout=1800):
    env = dict(os.environ, **environment)
    command = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
        )
    except subprocess.TimeoutExpired:
        return dict(case, error=f"timed out after {timeout} s")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return dict(case, error=completed.stderr.strip().splitlines()[-1:] or "no output")
    return json.loads(lines[-1])


def _machine():
    return dict(platform=platform.platform(), cpus=os.cpu_count(), python=platform.python_version())


def _write_json(out, payload):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.rename(out)


# ----------------------------------------------------------------------------- tables


def _short(name):
    return (
        name.replace("synthetic_", "synthetic ")
        .replace("_instructively_packed_16bit_compressed", "")
        .replace("_selection2_cropped2", "")
    )


def fast_table(path):
    """Markdown table of a bench_fast.json (as in docs/performance.md)."""
    d = json.loads(Path(path).read_text())
    rows = {}
    for r in d["results"]:
        rows.setdefault((r["dataset"], r["config"]), {})[r["solver"]] = r
    out = [
        "| data | config | nnz | fast s/iter | reference s/iter | sklearn s/iter | fast to conv. (iters) | reference to conv. | sklearn to conv. | fast peak MB | ref peak MB | sklearn peak MB | F fast / F ref | iter / stream bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(r, key, fmt):
        if r is None or key not in r:
            return "–" if r is None or "error" not in r else "err"
        return fmt.format(r[key])

    def conv(r):
        if r is None or "seconds_to_convergence" not in r:
            return "–"
        return f"{r['seconds_to_convergence']:.2f} s ({r['n_iter']})"

    for (ds, cfg), s in rows.items():
        n, ref, sk = s.get("numba"), s.get("reference"), s.get("sklearn")
        fr = "–"
        if n and ref and "objective" in n and "objective" in ref:
            fr = f"{n['objective'] / ref['objective']:.12f}"
        out.append(
            f"| {_short(ds)} | {cfg} | {n['nnz'] if n else ''} | {f(n, 'seconds_per_iteration', '{:.4f}')} | {f(ref, 'seconds_per_iteration', '{:.3f}')} | {f(sk, 'seconds_per_iteration', '{:.3f}')} | {conv(n)} | {conv(ref)} | {conv(sk)} | {f(n, 'peak_rss_mb', '{:.0f}')} | {f(ref, 'peak_rss_mb', '{:.0f}')} | {f(sk, 'peak_rss_mb', '{:.0f}')} | {fr} | {f(n, 'bound_ratio', '{:.1f}')} |"
        )
    return "\n".join(out)


def espm_table(path):
    """Markdown table of a bench_fast_espm.json."""
    d = json.loads(Path(path).read_text())
    out = [
        "| data | config | espm s/iter | fast s/iter | ratio | espm to conv. (iters) | fast to conv. (iters) | ratio | espm peak MB | fast peak MB | ratio | F espm | F fast |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in d["rows"]:
        o, e, r = row["ours"], row.get("espm", {}), row.get("ratios")
        if "error" in e:
            out.append(
                f"| {_short(row['dataset'])} | {row['config']} | {e['error']} | {o.get('seconds_per_iteration', 0):.4f} | | | {o.get('seconds_to_convergence', 0):.2f} s ({o.get('n_iter')}) | | | {o.get('peak_rss_mb', 0):.0f} | | | {o.get('objective', 0):.6g} |"
            )
            continue
        out.append(
            f"| {_short(row['dataset'])} | {row['config']} | {e['seconds_per_iteration']:.3f} | {o['seconds_per_iteration']:.4f} | **{r['per_iteration']:.0f}x** | {e['seconds_to_convergence']:.1f} s ({e['n_iter']}) | {o['seconds_to_convergence']:.2f} s ({o['n_iter']}) | **{r['to_convergence']:.0f}x** | {e['peak_rss_mb']:.0f} | {o['peak_rss_mb']:.0f} | **{r['peak_rss']:.1f}x** | {e['objective']:.8g} | {o['objective']:.8g} |"
        )
    return "\n".join(out)


def thread_table(path):
    """Markdown table of a bench_fast_threads.json."""
    d = json.loads(Path(path).read_text())
    out = ["| size | setting | seconds per iteration |", "|---|---|---|"]
    for r in d["results"]:
        out.append(
            f"| {r['side']}x{r['side']} | {r['mode']} | {r.get('seconds_per_iteration', float('nan')):.4f} |"
        )
    return "\n".join(out)


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
            cases.append(
                dict(
                    dataset=dataset,
                    config="physics",
                    solver=solver,
                    n_short=n_short,
                    n_long=n_long,
                    max_iter=1000,
                    converge=not (solver == "reference" and slow),
                )
            )
        for solver in solvers:
            n_short, n_long = (2, 7) if (solver == "reference" and slow) else (5, 25)
            if solver == "sklearn":
                n_short, n_long = (2, 7) if slow else (5, 45)
            cases.append(
                dict(
                    dataset=dataset,
                    config="plain",
                    solver=solver,
                    n_short=n_short,
                    n_long=n_long,
                    max_iter=1000,
                    converge=not (solver != "numba" and slow),
                )
            )
    if real:
        for name in REAL_FILES:
            for solver in solvers:
                big = name.endswith(".pts")
                # JEOL: the target run (200 iterations) for ours; per iteration only
                # for the others.
                cases.append(
                    dict(
                        dataset=name,
                        config="plain",
                        solver=solver,
                        n_short=2 if big and solver != "numba" else 5,
                        n_long=7 if big and solver != "numba" else 25,
                        max_iter=200 if big else 1000,
                        tol=0.0 if big else TOL,
                        converge=solver == "numba" or not big,
                    )
                )
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--solvers", default="numba,reference,sklearn")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_fast.json"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--tables", action="store_true", help="print the markdown tables of the committed results and exit"
    )
    parser.add_argument(
        "--threads-study", action="store_true", help="compare thread settings instead (use with --out)"
    )
    args = parser.parse_args()
    if args.case:
        case = json.loads(args.case)
        if case.get("study") == "threads":
            print(json.dumps(thread_case(case["side"], case["driver"])))
        elif case.get("study") == "blas":
            print(json.dumps(blas_case(case["side"])))
        else:
            print(json.dumps(run_case(case)))
        return
    if args.tables:
        results = REPO / "benchmarks" / "results"
        for make, name in (
            (fast_table, "bench_fast.json"),
            (espm_table, "bench_fast_espm.json"),
            (thread_table, "bench_fast_threads.json"),
        ):
            if (results / name).exists():
                print(f"{name}:\n\n{make(results / name)}\n")
        return
    if args.threads_study:
        thread_study([int(s) for s in args.sizes.split(",") if s], args.out)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for side in sizes:
        ensure_synthetic(side)
    results = []
    for case in plan(sizes, not args.no_real, args.solvers.split(",")):
        result = run_case_in_subprocess(case, args.timeout)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    _write_json(
        args.out,
        dict(
            machine=_machine(),
            command=" ".join(sys.argv),
            counts_per_pixel=COUNTS_PER_PIXEL,
            n_components=N_COMPONENTS,
            configs=CONFIGS,
            results=results,
        ),
    )


if __name__ == "__main__":
    main()
