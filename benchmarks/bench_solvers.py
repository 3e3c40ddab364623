"""Benchmark: time to reach the best objective for the solvers mu, pgd and adagrad, and
semi-NMF beside a plain numpy implementation of the same updates.

For each image size (128x128, and 256x256 with ``--sizes 128 256``) x 2000 channels of the
synthetic Poisson counts of ``bench_solver.py`` (3 phases, scipy CSR) and each loss (KL,
Frobenius), SmoothNMF (G=None, no regulariser, init="random", random_state=0: the same
start for every solver) runs with ``solver`` = mu, pgd, adagrad for at most ``--budget``
seconds each (a callback stops it) or to tol=1e-9. The best objective is the lowest final
one of the three; each solver's "time to best" is the first time its objective came within
1e-4 (relative) of it, None when it never did in the budget. Every case runs in the same
process, one after the other, on a shared machine: read ratios, not absolute seconds.

Semi-NMF: the counts minus their mean spectrum (signed, dense float64), k = 3, 50
iterations of ``SemiNMF(solver="mu")``, of a plain numpy implementation of Ding, Li &
Jordan's updates written here (pinv for the codes, the square-root update for the
dictionary), and, where it imports, of the ``overcomplete`` package's multiplicative
Semi-NMF (torch, float64, on the CPU), all from the same start: seconds per iteration and
the final objectives (they must agree). overcomplete's SemiNMF keeps the *codes*
nonnegative and the dictionary signed, so it is run on Xᵀ (its codes are our dictionary):
from the same start its iterates are ours transposed, up to its 1e-8 safeguards. It needs
torch, which the project does not install; run this script from an environment that has
``torch`` and ``overcomplete`` besides espm_cli to include it (the JSON says whether it ran).
Every library runs on one thread (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)).

Usage::

    python benchmarks/bench_solvers.py                       # writes results/bench_solvers.json
    python benchmarks/bench_solvers.py --sizes 32 --budget 5 --output /tmp/quick.json
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

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bench_solvers.json"
SOLVERS = ("mu", "pgd", "adagrad")
LOSSES = ("kullback-leibler", "frobenius")
REACHED = 1e-4


def trace(X, beta_loss, solver, budget):
    """(seconds, objective) after every iteration, until tol=1e-9 or the budget."""
    from espm_cli.solver import SmoothNMF

    points = []
    start = time.perf_counter()

    def record(n_iter, row):
        points.append((time.perf_counter() - start, float(row[-1])))
        return points[-1][0] > budget

    estimator = SmoothNMF(
        N_PHASES,
        beta_loss=beta_loss,
        solver=solver,
        init="random",
        random_state=0,
        max_iter=100000,
        tol=1e-9,
        callback=record,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    return points, estimator.n_iter_


def run_solvers(side, budget):
    X = synthetic_counts(side)
    rows = []
    for beta_loss in LOSSES:
        traces = {}
        for solver in SOLVERS:
            points, n_iter = trace(X, beta_loss, solver, budget)
            traces[solver] = (points, n_iter)
            print(
                f"{side} {beta_loss} {solver}: {n_iter} iterations, {points[-1]}", file=sys.stderr, flush=True
            )
        best = min(points[-1][1] for points, _ in traces.values())
        for solver, (points, n_iter) in traces.items():
            reached = [t for t, value in points if value <= best + REACHED * abs(best)]
            rows.append(
                {
                    "pixels": side * side,
                    "n_channels": N_CHANNELS,
                    "nnz": int(X.nnz),
                    "beta_loss": beta_loss,
                    "solver": solver,
                    "n_iter": n_iter,
                    "seconds": points[-1][0],
                    "final_objective": points[-1][1],
                    "best_objective": best,
                    "final_relative_gap": (points[-1][1] - best) / abs(best),
                    "seconds_to_best_1e-4": reached[0] if reached else None,
                    "seconds_per_iteration": points[-1][0] / len(points),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def plain_semi_nmf(X, D, n_iterations):
    """Ding, Li & Jordan (2010), written directly: Z = X D⁺, D ← D √(...)."""
    for _ in range(n_iterations):
        Z = X @ np.linalg.pinv(D)
        cross, gram = Z.T @ X, Z.T @ Z
        positive = lambda A: (np.abs(A) + A) / 2  # noqa: E731
        negative = lambda A: (np.abs(A) - A) / 2  # noqa: E731
        D = D * np.sqrt((positive(cross) + negative(gram) @ D) / (negative(cross) + positive(gram) @ D))
    Z = X @ np.linalg.pinv(D)
    return Z, D


def overcomplete_semi_nmf(X, D, n_iterations):
    """overcomplete's multiplicative Semi-NMF on Xᵀ from our start; None if not installed."""
    try:
        import matplotlib
        import matplotlib.cm

        if not hasattr(matplotlib.cm, "get_cmap"):  # overcomplete 0.3 imports it; gone in matplotlib 3.9
            matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
        import torch
        from overcomplete.optimization.semi_nmf import snmf_multiplicative_update
    except ImportError:
        return None
    torch.set_num_threads(1)
    A = torch.from_numpy(np.ascontiguousarray(X.T))  # (features, samples): its codes are our atoms
    start = time.perf_counter()
    Z = torch.from_numpy(np.ascontiguousarray(D.T))  # (features, k) >= 0
    D_signed = ((A.T @ Z) @ torch.linalg.pinv(Z.T @ Z)).T  # its own least-squares start of the other factor
    Z, D_signed = snmf_multiplicative_update(A, Z, D_signed, max_iter=n_iterations, tol=0.0)
    seconds = time.perf_counter() - start
    import overcomplete

    version = getattr(overcomplete, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed_version

        version = installed_version("overcomplete")
    return seconds, Z.numpy().T, D_signed.numpy().T, {"overcomplete": version, "torch": torch.__version__}


def run_semi_nmf(side, n_iterations=50):
    from espm_cli.solver import SemiNMF

    X = synthetic_counts(side).astype(np.float64).toarray()
    X -= X.mean(axis=0)
    D0 = np.random.default_rng(0).uniform(0.1, 1.0, (N_PHASES, X.shape[1]))
    estimator = SemiNMF(N_PHASES, init="custom", max_iter=n_iterations, tol=0.0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = estimator.fit_transform(X, W=D0)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    Z_plain, D_plain = plain_semi_nmf(X, D0, n_iterations)
    plain = time.perf_counter() - start
    objective = lambda Z, D: 0.5 * float(np.sum((X - Z @ D) ** 2))  # noqa: E731
    other = overcomplete_semi_nmf(X, D0, n_iterations)
    row = {
        "pixels": side * side,
        "n_channels": N_CHANNELS,
        "iterations": n_iterations,
        "semi_nmf_s_per_iter": ours / n_iterations,
        "plain_numpy_s_per_iter": plain / n_iterations,
        "semi_nmf_objective": objective(Z, estimator.components_),
        "plain_numpy_objective": objective(Z_plain, D_plain),
        "max_relative_dictionary_difference": float(
            np.max(np.abs(estimator.components_ - D_plain)) / np.max(np.abs(D_plain))
        ),
        "overcomplete": None,
    }
    if other is not None:
        seconds, D_other, Z_other, versions = other
        row["overcomplete"] = {
            **versions,
            "s_per_iter": seconds / n_iterations,
            "objective": objective(Z_other, D_other),
            "max_relative_dictionary_difference": float(
                np.max(np.abs(estimator.components_ - D_other)) / np.max(np.abs(D_other))
            ),
            "ratio_overcomplete_over_semi_nmf": (seconds / n_iterations) / row["semi_nmf_s_per_iter"],
        }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per solver and case")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    from espm_cli.solver import SmoothNMF

    SmoothNMF(2, max_iter=2).fit(synthetic_counts(8).astype(np.float64))  # compile numba
    rows, semi = [], []
    for side in args.sizes:
        rows.extend(run_solvers(side, args.budget))
        semi.append(run_semi_nmf(side))
    result = {
        "benchmark": "bench_solvers",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python"] + sys.argv),
        "budget_seconds": args.budget,
        "reached_within": REACHED,
        "n_components": N_PHASES,
        "machine": machine_info(),
        "note": "one run per case, in one process, on a shared 2-core machine: compare ratios within a case",
        "solvers": rows,
        "semi_nmf": semi,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
