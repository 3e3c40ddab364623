"""Benchmark: seconds per iteration of SmoothNMF per β-divergence beside scikit-learn.

The same synthetic Poisson counts as ``bench_solver.py`` (3 phases, 2000 channels, ~300
counts per pixel, scipy CSR) at 128x128 (and 256x256 with ``--sizes 128 256``). For every
β in {0.5, 1, 1.5, 2}: SmoothNMF (G=None, no regulariser, ``backend="auto"``: the fused
numba paths for β=1 and β=2, the reference path of the solver core otherwise) and scikit-learn's
``NMF(beta_loss=β, solver="mu")`` on the same matrix, as CSR and (where it fits in
memory) dense float64. Plus, for SmoothNMF at β=1 and β=2: the iteration without the
extrapolated trial (``extrapolate=False``), 50 masked channels, and 10 % of the entries
masked.

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set), as the ``espm`` command
sets it and as ``bench_fast.py`` measures: threaded OpenBLAS is slower on these tall-skinny
products on a small machine, for both libraries.

Seconds per iteration are differences: (time of ``--iters`` B iterations − time of A
iterations) / (B − A), both from the same random start with tol=0, so the start and the
set-up cancel (B − A = 20 by default: a few iterations are within the noise of the set-up
on a shared machine). Every case runs in the same process, one after the other.

Usage::

    python benchmarks/bench_beta.py                        # writes results/bench_beta.json
    python benchmarks/bench_beta.py --sizes 32 --output /tmp/quick.json
    python benchmarks/bench_beta.py --sizes 128 256 --betas 1 2 --iters 5 45 \
        --output benchmarks/results/bench_beta_1_2.json      # KL and Frobenius only
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_solver import N_CHANNELS, N_PHASES, machine_info, synthetic_counts  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bench_beta.json"
BETAS = (0.5, 1.0, 1.5, 2.0)
DENSE_LIMIT = 2**26  # entries: sklearn's dense runs above this would crowd a small machine


def _timed(make, X, n_iter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = make(n_iter)
        start = time.perf_counter()
        estimator.fit(X)
        return time.perf_counter() - start


def seconds_per_iteration(make, X, iters, repeats=1):
    """(best time of B iterations − best time of A) / (B − A): the set-up cancels."""
    low, high = iters
    best = {n: min(_timed(make, X, n) for _ in range(repeats)) for n in (low, high)}
    return (best[high] - best[low]) / (high - low)


def ours(beta, mask=None, extrapolate=True):
    from espm_cli.solver import SmoothNMF

    return lambda n_iter: SmoothNMF(
        N_PHASES,
        beta_loss=beta,
        mask=mask,
        init="random",
        random_state=0,
        max_iter=n_iter,
        tol=0.0,
        extrapolate=extrapolate,
    )


def sklearn_mu(beta):
    from sklearn.decomposition import NMF

    return lambda n_iter: NMF(
        N_PHASES, beta_loss=beta, solver="mu", init="random", random_state=0, max_iter=n_iter, tol=0.0
    )


def run_size(side, iters, betas=BETAS):
    X = synthetic_counts(side)
    X_float = X.astype(np.float64)
    rows = []
    base = {
        "pixels": side * side,
        "n_channels": N_CHANNELS,
        "nnz": int(X.nnz),
        "density": X.nnz / (X.shape[0] * X.shape[1]),
    }
    dense = X_float.toarray() if X.shape[0] * X.shape[1] <= DENSE_LIMIT else None
    for beta in betas:
        row = dict(base, beta=beta)
        row["smoothnmf_s_per_iter"] = seconds_per_iteration(ours(beta), X, iters)
        row["sklearn_mu_csr_s_per_iter"] = seconds_per_iteration(sklearn_mu(beta), X_float, iters)
        if dense is not None:
            row["sklearn_mu_dense_s_per_iter"] = seconds_per_iteration(sklearn_mu(beta), dense, iters)
        best = min(v for k, v in row.items() if k.startswith("sklearn"))
        row["speedup_vs_best_sklearn"] = best / row["smoothnmf_s_per_iter"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    channels = np.zeros(N_CHANNELS, bool)
    channels[:50] = True
    entries = np.random.default_rng(0).random(X.shape) < 0.1
    # Without the extrapolated trial (whose objective costs a pass of its own): the cost of
    # the MM iteration alone.
    for beta in (1.0, 2.0):
        row = dict(base, beta=beta, extrapolate=False)
        row["smoothnmf_s_per_iter"] = seconds_per_iteration(ours(beta, extrapolate=False), X, iters)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    for beta in (1.0, 2.0):
        for name, mask in (("50 masked channels", channels), ("10% masked entries", entries)):
            row = dict(base, beta=beta, mask=name)
            row["smoothnmf_s_per_iter"] = seconds_per_iteration(ours(beta, mask), X, iters)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--iters", type=int, nargs=2, default=[5, 25], metavar=("A", "B"))
    parser.add_argument(
        "--betas", type=float, nargs="+", default=list(BETAS), help="the β beside scikit-learn"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()  # the machine may be shared: say how busy it was
    # Compile the numba kernels before timing anything.
    for beta in (1.0, 2.0):
        ours(beta)(2).fit(synthetic_counts(8).astype(np.float64))
    rows = []
    for side in args.sizes:
        rows.extend(run_size(side, tuple(args.iters), tuple(args.betas)))
    result = {
        "benchmark": "bench_beta",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python"] + sys.argv),
        "iters": args.iters,
        "n_components": N_PHASES,
        "machine": machine_info(),
        "environment": {
            "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"],
            "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", ""),
        },
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
