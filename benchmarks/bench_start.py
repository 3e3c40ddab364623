"""The start of SmoothNMF on hard cases: accuracy and time to solution.

For every case of :mod:`hard_cases` (a matrix and minor phases, shared elements, low
dose), sizes and seeds, each variant is fitted the way a user runs it (default tol and
max_iter, the start included in the time, the numba kernels compiled beforehand):

- ``before``: the previous defaults, NNDSVD-a, one start, plain multiplicative updates;
- ``spa``: the vertex start alone (``init="spa", n_init=1, extrapolate=False``);
- ``default``: today's defaults (``init="auto"``: SPA, ``n_init="auto"``: one start,
  ``extrapolate=True``);
- ``best_of_two``: SPA and NNDSVD-a, each run to convergence, the lower objective kept;
- ``n_init_4``: 4 starts (SPA, NNDSVD-a, two k-means++).

Scores (:func:`hard_cases.score`): mean and largest spectral angle of the phases to the
truth, mean absolute at.% error, final objective, iterations, seconds to solution and
seconds before the first iteration. Rows are written as they come (the JSON file is
rewritten after each case). ``--espm`` adds espm 1.1.3 (benchmarks/.venv-espm, see
``bench_espm.py``) on the cases named by ``--espm-cases``, run with its own defaults at
the same tol and max_iter, so that the time to solution can be compared in one run.

Run (about 15 minutes on 2 cores without espm)::

    .venv/bin/python benchmarks/bench_start.py --sizes 128,256 --seeds 0,1,2
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

VARIANTS = {
    "before": dict(init="nndsvda", n_init=1, extrapolate=False),
    "spa": dict(init="spa", n_init=1, extrapolate=False),
    "default": dict(),
    "best_of_two": dict(n_init=2),
    "n_init_4": dict(n_init=4),
}
FIT = dict(simplex="H", max_iter=200, tol=1e-4, random_state=0)  # the CLI's defaults


def fit_variant(X, shape, model, k, options):
    """Fit once; seconds to solution and to the first iteration (n_init=1 only)."""
    from espm_cli.solver import SmoothNMF

    first = []
    begin = time.perf_counter()

    def note_first(n_iter, row):
        if not first:
            first.append(time.perf_counter() - begin)

    estimator = SmoothNMF(k, G=model, shape_2d=shape, callback=note_first, **FIT, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    seconds = time.perf_counter() - begin
    return estimator, seconds, first[0] if first else None


def warm_up():
    """Compile the numba kernels once, outside the timings."""
    import hard_cases

    case = hard_cases.CASES[0]
    X, shape, model, _ = hard_cases.make_case(case, 16, 0, n_channels=200)
    for options in VARIANTS.values():
        fit_variant(X, shape, model, len(case.phases), options)


def espm_fit(payload):
    """Inside benchmarks/.venv-espm: espm 1.1.3's SmoothNMF on the saved case."""
    warnings.filterwarnings("ignore")
    from espm.estimators import SmoothNMF

    stored = np.load(payload["npz"])
    import scipy.sparse as sp

    X = (
        sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=tuple(stored["shape"]))
        .T.toarray()
        .astype(np.float64)
    )
    G = stored["G"]
    begin = time.perf_counter()
    estimator = SmoothNMF(
        n_components=int(payload["k"]),
        G=G,
        simplex_H=True,
        shape_2d=tuple(int(v) for v in stored["shape_2d"]),
        max_iter=FIT["max_iter"],
        tol=FIT["tol"],
        random_state=0,
        verbose=0,
        hspy_comp=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        estimator.fit_transform(X)
    seconds = time.perf_counter() - begin
    np.savez(payload["factors_out"], W=estimator.W_, H=estimator.H_)
    return dict(seconds=seconds, n_iter=int(estimator.n_iter_))


def run_espm(X, shape, model, k, name, timeout):
    import bench_espm

    bench_espm.ensure_espm_venv()
    data_dir = HERE / "data"
    data_dir.mkdir(exist_ok=True)
    npz = data_dir / f"start_{name}.npz"
    np.savez(npz, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape, shape_2d=shape, G=model.G)
    factors = data_dir / f"start_{name}_espm_factors.npz"
    payload = dict(npz=str(npz), k=k, factors_out=str(factors))
    command = [str(bench_espm.ESPM_PYTHON), str(Path(__file__).resolve()), "--espm-fit", json.dumps(payload)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout} s")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return dict(error=(completed.stderr.strip().splitlines() or ["no output"])[-1])
    result = json.loads(lines[-1])
    result["W"] = np.load(factors)["W"]
    return result


def objective(X, model, W, H):
    """KL divergence of a factorisation (espm's, ours) with our reference terms."""
    from espm_cli.solver import reference
    from espm_cli.solver.counts import prepare_counts

    data = prepare_counts(X, np.float64)
    return float(np.sum(reference.objective_terms(data, model.G, W, H)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--espm-fit", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--cases", default="k4_shared,k3_steel,k5_alloy,k6_small,k4_shared_dose50,k3_steel_dose30,k3_easy"
    )
    parser.add_argument("--variants", default="before,default,best_of_two")
    parser.add_argument("--espm", action="store_true")
    parser.add_argument("--espm-cases", default="k4_shared")
    parser.add_argument("--espm-seeds", default="0")
    parser.add_argument("--timeout", type=float, default=3000)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_start.json"))
    parser.add_argument("--table", action="store_true", help="print --out as markdown tables")
    args = parser.parse_args()
    if args.table:
        print(tables(json.loads(Path(args.out).read_text())))
        return
    if args.espm_fit:
        print(json.dumps(espm_fit(json.loads(args.espm_fit))))
        return
    import hard_cases

    import espm_cli

    warm_up()
    rows = []
    for size in [int(v) for v in args.sizes.split(",")]:
        for name in args.cases.split(","):
            case = hard_cases.case_by_name(name)
            for seed in [int(v) for v in args.seeds.split(",")]:
                X, shape, model, truth = hard_cases.make_case(case, size, seed)
                k = len(case.phases)
                row = dict(
                    case=name,
                    size=size,
                    seed=seed,
                    k=k,
                    dose=case.dose,
                    minor_phase_fractions=[round(float(v), 4) for v in truth["maps"].mean(axis=1)[1:]],
                )
                for variant in args.variants.split(","):
                    estimator, seconds, first = fit_variant(X, shape, model, k, VARIANTS[variant])
                    row[variant] = dict(
                        hard_cases.score(model, estimator.W_, truth),
                        objective=float(estimator.losses_[-1, -1]),
                        n_iter=int(estimator.n_iter_),
                        seconds=seconds,
                        seconds_to_first_iteration=first,
                    )
                if (
                    args.espm
                    and name in args.espm_cases.split(",")
                    and str(seed) in args.espm_seeds.split(",")
                ):
                    espm = run_espm(X, shape, model, k, f"{name}_{size}_{seed}", args.timeout)
                    if "error" not in espm:
                        W = espm.pop("W")
                        espm.update(hard_cases.score(model, W, truth))
                        if "default" in row:
                            espm["time_ratio_espm_over_default"] = espm["seconds"] / row["default"]["seconds"]
                    row["espm_1.1.3"] = espm
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                bench_fast._write_json(
                    args.out,
                    dict(
                        command=" ".join(sys.argv),
                        espm_cli=espm_cli.__version__,
                        machine=bench_fast._machine(),
                        fit_settings=FIT,
                        variants=VARIANTS,
                        rows=rows,
                    ),
                )


def tables(payload):
    """Markdown: per case and size, each variant's mean over the seeds (and the worst seed)."""
    rows = payload["rows"]
    variants = [
        v for v in ("before", "spa", "default", "best_of_two", "n_init_4", "espm_1.1.3") if v in rows[0]
    ]
    lines = [
        "| case | size | seeds | "
        + " | ".join(f"{v}: angle mean (worst) / at.% / iter / s" for v in variants)
        + " |",
        "|---|---|---|" + "---|" * len(variants),
    ]
    keys = sorted({(r["size"], r["case"]) for r in rows}, key=lambda key: (key[0], key[1]))
    for size, case in keys:
        group = [r for r in rows if r["case"] == case and r["size"] == size]
        cells = []
        for variant in variants:
            runs = [r[variant] for r in group if variant in r and "error" not in r[variant]]
            if not runs:
                cells.append("-")
                continue
            angle = [run["mean_angle_deg"] for run in runs]
            cells.append(
                f"{np.mean(angle):.2f}° ({max(angle):.2f}°) / "
                f"{np.mean([run['at_percent_error'] for run in runs]):.2f} / "
                f"{np.mean([run['n_iter'] for run in runs]):.0f} / "
                f"{np.mean([run['seconds'] for run in runs]):.2f}"
            )
        lines.append(f"| {case} | {size} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
