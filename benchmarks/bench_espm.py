"""espm_cli's fast backend against espm 1.1.3 on the same data and parameters.

espm pins hyperspy 2.2.0, so it runs from its own virtual environment,
``benchmarks/.venv-espm``, created on first use (``python3 -m venv`` then
``pip install espm==1.1.3``). Each measurement runs in its own subprocess (peak RSS from
``VmHWM``, see :func:`bench_fast.peak_rss_mb`): espm's inside that environment, ours through
:func:`bench_fast.run_case_in_subprocess`. Both get the same data (written once as CSR by
``bench_fast``), the same number of phases and the same regularisation:

- "physics": G (12 columns), Laplacian, log sparsity, simplex on H. espm's Laplacian
  term is ``lambda_L tr(H Δ Hᵀ)``, ours ``(lambda_L / 2) tr(H Δ Hᵀ)``, so espm gets half
  our lambda_L;
- "plain" (real files): KL-NMF, G = identity, no regularisation.

espm receives X as it requires: dense float64, channels x pixels. Each tool stops by its
own rule at tol=1e-4; the final objective of both is evaluated with our float64 reference
``objective_terms`` so they can be compared. Ratios (espm / ours) are computed within the
run.

Run (about 25 minutes on 2 cores; the JEOL .pts file is left out for espm, which would need
8.6 GB of dense float64 X)::

    .venv/bin/python benchmarks/bench_espm.py --out benchmarks/results/bench_fast_espm.json

After a change to espm_cli only, ``--reuse-espm`` re-measures our side of the selected
cases and takes espm's numbers from the existing ``--out`` file (other rows are kept; the
rows re-measured are marked ``"espm_reused": true``), e.g.::

    .venv/bin/python benchmarks/bench_espm.py --sizes 128,256 --no-real --reuse-espm
"""

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_fast  # noqa: E402  (same folder; numpy/scipy only at import)

ESPM_VENV = HERE / ".venv-espm"
ESPM_PYTHON = ESPM_VENV / "bin" / "python"
ESPM_VERSION = "1.1.3"
DENSE_LIMIT_BYTES = 4e9  # espm needs X dense in float64; larger inputs are not run


def ensure_espm_venv():
    """Create benchmarks/.venv-espm with espm==1.1.3 if it is not there yet."""
    if ESPM_PYTHON.exists():
        check = subprocess.run([str(ESPM_PYTHON), "-c", "import espm"], capture_output=True)
        if check.returncode == 0:
            return
    subprocess.run(["python3", "-m", "venv", str(ESPM_VENV)], check=True)
    subprocess.run([str(ESPM_PYTHON), "-m", "pip", "install", "--quiet", f"espm=={ESPM_VERSION}"], check=True)


def real_npz_path(name):
    return bench_fast.DATA_DIR / f"real_{name}.npz"


def ensure_real_npz(name):
    """Convert a real file once to CSR (pixels x channels) for the espm environment."""
    path = real_npz_path(name)
    if not path.exists():
        X, shape_2d = bench_fast.load_real(name)
        bench_fast.DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape, shape_2d=shape_2d)
        tmp.rename(path)
    return path


# ----------------------------------------------------------------------------- espm side


def _load_for_espm(case):
    """(X dense float64 channels x pixels, G or None, shape_2d) inside the espm venv."""
    import scipy.sparse as sp

    if case["dataset"].startswith("synthetic_"):
        X, G, _, shape_2d = bench_fast.load_synthetic(int(case["dataset"].split("_")[1]))
    else:
        stored = np.load(case["npz"])
        X = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=tuple(stored["shape"]))
        G, shape_2d = None, tuple(int(v) for v in stored["shape_2d"])
    if case["config"] == "plain":
        G = None
    return np.asarray(X.T.toarray(), dtype=np.float64), G, shape_2d


def espm_case(case):
    """Measure espm 1.1.3 on one case (runs inside benchmarks/.venv-espm)."""
    warnings.filterwarnings("ignore")
    from espm.estimators import SmoothNMF

    X, G, shape_2d = _load_for_espm(case)
    config = bench_fast.CONFIGS[case["config"]]

    def fit(max_iter, tol, no_stop):
        estimator = SmoothNMF(
            n_components=bench_fast.N_COMPONENTS,
            G=G,
            lambda_L=config["lambda_L"] / 2.0,
            mu=config["mu"],
            epsilon_reg=1.0,
            simplex_H=config["simplex"] == "H",
            simplex_W=False,
            shape_2d=shape_2d,
            max_iter=max_iter,
            tol=tol,
            no_stop_criterion=no_stop,
            random_state=0,
            verbose=0,
            hspy_comp=False,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # espm prints its progress
            start = time.perf_counter()
            estimator.fit_transform(X)
            seconds = time.perf_counter() - start
        return seconds, estimator

    result = dict(case)
    t_short = fit(case["n_short"], 0.0, True)[0]
    t_long = fit(case["n_long"], 0.0, True)[0]
    result["seconds_per_iteration"] = (t_long - t_short) / (case["n_long"] - case["n_short"])
    seconds, estimator = fit(case["max_iter"], bench_fast.TOL, False)
    result.update(seconds_to_convergence=seconds, n_iter=int(estimator.n_iter_))
    np.savez(
        case["factors_out"],
        W=estimator.W_,
        H=estimator.H_,
        G=estimator.G_ if estimator.G_ is not None else np.zeros(0),
    )
    result["peak_rss_mb"] = bench_fast.peak_rss_mb()
    return result


def run_espm_in_subprocess(case, timeout):
    command = [str(ESPM_PYTHON), str(Path(__file__).resolve()), "--espm-case", json.dumps(case)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(case, error=f"timed out after {timeout} s")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return dict(case, error=completed.stderr.strip().splitlines()[-1:] or "no output")
    return json.loads(lines[-1])


def espm_objective(case, factors_path):
    """F of espm's W, H with our reference objective (same data and parameters)."""
    X, G, _, shape_2d = bench_fast.load_dataset(case["dataset"])
    if case["config"] == "plain":
        G = None
    factors = np.load(factors_path)
    espm_G = factors["G"]
    W = factors["W"]
    if G is None and espm_G.size:  # espm made its own identity G
        W = espm_G @ W
    return bench_fast._objective(X, G, W, factors["H"], bench_fast.CONFIGS[case["config"]], shape_2d)


# ----------------------------------------------------------------------------- plan


def plan(sizes, real):
    cases = []
    for side in sizes:
        slow = side >= 256
        cases.append(
            dict(
                dataset=f"synthetic_{side}",
                config="physics",
                n_short=2 if slow else 3,
                n_long=7 if slow else 13,
                max_iter=400,
            )
        )
    if real:
        for name in bench_fast.REAL_FILES:
            cases.append(dict(dataset=name, config="plain", n_short=3, n_long=13, max_iter=400))
    return cases


def _dense_bytes(case):
    X = bench_fast.load_dataset(case["dataset"])[0]
    return 8.0 * X.shape[0] * X.shape[1]


def _ratios(espm, ours):
    return dict(
        per_iteration=espm["seconds_per_iteration"] / ours["seconds_per_iteration"],
        to_convergence=espm["seconds_to_convergence"] / ours["seconds_to_convergence"],
        peak_rss=espm["peak_rss_mb"] / ours["peak_rss_mb"],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--espm-case", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_fast_espm.json"))
    parser.add_argument("--timeout", type=float, default=2400)
    parser.add_argument(
        "--reuse-espm",
        action="store_true",
        help="take espm's results from the existing --out file, rerun ours",
    )
    args = parser.parse_args()
    if args.espm_case:
        print(json.dumps(espm_case(json.loads(args.espm_case))))
        return
    previous = {}
    if args.reuse_espm:
        previous = {row["dataset"]: row for row in json.loads(Path(args.out).read_text())["rows"]}
    else:
        ensure_espm_venv()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    for case in plan(sizes, not args.no_real):
        if case["dataset"].startswith("synthetic_"):
            bench_fast.ensure_synthetic(int(case["dataset"].split("_")[1]))
        else:
            case["npz"] = str(ensure_real_npz(case["dataset"]))
        ours = bench_fast.run_case_in_subprocess(
            dict(
                dataset=case["dataset"],
                config=case["config"],
                solver="numba",
                n_short=5,
                n_long=25,
                max_iter=1000,
            ),
            args.timeout,
        )
        row = dict(dataset=case["dataset"], config=case["config"], ours=ours)
        if args.reuse_espm:
            espm = previous[case["dataset"]]["espm"]
            row.update(espm=espm, espm_reused=True)
            if "error" not in espm:
                row["ratios"] = _ratios(espm, ours)
        elif _dense_bytes(case) > DENSE_LIMIT_BYTES:
            row["espm"] = dict(
                error=f"not run: espm needs X dense in float64 ({_dense_bytes(case) / 1e9:.1f} GB)"
            )
        else:
            factors = bench_fast.DATA_DIR / f"espm_factors_{case['dataset']}.npz"
            espm = run_espm_in_subprocess(dict(case, factors_out=str(factors)), args.timeout)
            if "error" not in espm:
                espm["objective"] = espm_objective(case, factors)
                row["ratios"] = _ratios(espm, ours)
            row["espm"] = espm
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    command = " ".join(sys.argv)
    if args.reuse_espm:  # keep the rows not re-measured, in their order
        done = {row["dataset"]: row for row in rows}
        old = json.loads(Path(args.out).read_text())
        rows = [done.pop(row["dataset"], row) for row in old["rows"]] + list(done.values())
        command = f"{old['command'].split('; then ')[0]}; then {command}"
    bench_fast._write_json(
        args.out,
        dict(
            machine=bench_fast._machine(),
            command=command,
            espm_version=ESPM_VERSION,
            configs=bench_fast.CONFIGS,
            rows=rows,
        ),
    )


if __name__ == "__main__":
    main()
