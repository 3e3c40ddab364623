"""Benchmark: seconds per β = 1 (KL) iteration of one espm_cli checkout, for comparing versions.

Issue 9 asks that the solver-core re-cut keep the KL iteration within 10 % of what it was
before (commit ec0d96b, the last one before β-divergences and masks). This script times
whichever espm_cli it imports, so it is run once per checkout, each with its own
interpreter, and the two rows are compared (``--label`` names a row; rows accumulate in
``--output``).

What is timed: the plain multiplicative iteration (``extrapolate=False`` where the option
exists; ec0d96b had no extrapolation) of ``SmoothNMF(3, init="random", random_state=0)``
with G=None, no regulariser, no simplex, on the synthetic Poisson counts of
``bench_solver.py`` (scipy CSR, 2000 channels, ~300 counts per pixel) at 128x128 and
256x256. Seconds per iteration are differences, (time of B iterations − time of A) /
(B − A), from the same start, so the start and set-up cancel; each of ``--repeats`` runs,
the median kept. BLAS on one thread, as the ``espm`` command sets it.

Usage (from outside the checkouts, so that each interpreter imports its own espm_cli)::

    cd /tmp && /path/to/old/venv/bin/python /work/main/benchmarks/bench_kl_iteration.py --label ec0d96b
    cd /tmp && /work/main/.venv/bin/python /work/main/benchmarks/bench_kl_iteration.py --label main
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
from bench_solver import synthetic_counts  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bench_kl_iteration.json"


def fit_seconds(X, n_iter):
    import espm_cli.solver as solver

    params = {"init": "random", "random_state": 0, "max_iter": n_iter, "tol": 0.0, "simplex": None}
    if "extrapolate" in solver.SmoothNMF().get_params():
        params["extrapolate"] = False
    estimator = solver.SmoothNMF(3, **params)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    return time.perf_counter() - started, float(np.sum(estimator.losses_[-1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--iters", type=int, nargs=2, default=[5, 25], metavar=("A", "B"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    import espm_cli

    fit_seconds(synthetic_counts(8).astype(np.float64), 2)  # compile the kernels
    rows = []
    for side in args.sizes:
        X = synthetic_counts(side)
        per_iteration, objectives = [], []
        for _ in range(args.repeats):
            short, _ = fit_seconds(X, args.iters[0])
            long, objective = fit_seconds(X, args.iters[1])
            per_iteration.append((long - short) / (args.iters[1] - args.iters[0]))
            objectives.append(objective)
        rows.append(
            {
                "pixels": side * side,
                "nnz": int(X.nnz),
                "s_per_iteration_median": float(np.median(per_iteration)),
                "s_per_iteration_runs": per_iteration,
                f"objective_after_{args.iters[1]}": objectives[0],
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    record = json.loads(args.output.read_text()) if args.output.exists() else {"runs": []}
    record["runs"] = [run for run in record["runs"] if run["label"] != args.label] + [
        {
            "label": args.label,
            "espm_cli": str(Path(espm_cli.__file__).parent),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average": list(os.getloadavg()),
            "rows": rows,
        }
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
