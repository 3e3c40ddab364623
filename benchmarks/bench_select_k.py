"""Choosing k by held-out deviance on simulated images with a known k.

For true k = 2 .. 6 (a matrix and minor phases of about 5 % of the pixels each, as
particles), doses 100 and 300 counts per pixel and several seeds, the k range
true − 2 .. true + 2 (at least 1) is scored with :func:`espm_cli.analysis.select_k.select_k`
under each fold kind asked for, with the decompose defaults (simplex H, tol 1e-4,
max_iter 200, the vertex start). Every case is written (the JSON file is rewritten after
each), with the whole curve, the suggestion, the best k and the seconds.

``--sample`` adds the bundled sample (k = 3 expected) over 2..6. The time of a 2..8 sweep of
``espm select-k`` on a 128 x 128 x 2000 image is benchmarks/bench_select_k_timing.py.

Run (the command that made benchmarks/results/bench_select_k.json)::

    .venv/bin/python benchmarks/bench_select_k.py --size 64 --seeds 0,1 --kinds speckle,blocks
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from hard_cases import CARBIDE, FEPT, ILMENITE, MNS, NIO, SILICATE, STEEL, TIO2, ZRO2, Case, make_case  # noqa: E402

MINOR = "particles:0.05"
CASES = (
    Case("k2", (SILICATE, FEPT), (MINOR,)),
    Case("k3", (STEEL, CARBIDE, MNS), (MINOR, MINOR)),
    Case("k4", (SILICATE, FEPT, TIO2, ILMENITE), (MINOR,) * 3),
    Case("k5", (SILICATE, FEPT, TIO2, ILMENITE, NIO), (MINOR,) * 4),
    Case("k6", (SILICATE, FEPT, TIO2, ILMENITE, NIO, ZRO2), ("particles:0.05:4",) * 5),
)
FIT = dict(simplex="H")  # the rest: the workflow's defaults


def run_case(case, dose, size, seed, kind, n_folds, below=2):
    from dataclasses import replace

    from espm_cli.analysis.select_k import select_k

    case = replace(case, dose=dose)
    X, shape, model, _ = make_case(case, size=size, seed=seed)
    true_k = len(case.phases)
    k_values = range(max(1, true_k - below), true_k + 3)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection = select_k(
            X, k_values, model=model, shape_2d=shape, n_folds=n_folds, fold_kind=kind, fold_seed=seed, **FIT
        )
    rows = selection.rows()
    best = selection.mean.min()
    # sharpness: how many standard errors the neighbours of the true k lie above it
    return {
        "case": case.name,
        "true_k": true_k,
        "dose": dose,
        "size": size,
        "seed": seed,
        "fold_kind": kind,
        "n_folds": n_folds,
        "suggested_k": selection.suggested_k,
        "best_k": selection.best_k,
        "seconds": time.perf_counter() - started,
        "curve": rows,
        "margin_in_se": margins(selection, true_k),
        "lowest_mean": float(best),
    }


def margins(selection, true_k):
    """(mean(k) − mean(true k)) / SE of that difference, for k = true ± 1."""
    ks = list(selection.k_values)
    if true_k not in ks:
        return {}
    i = ks.index(true_k)
    out = {}
    for j in (i - 1, i + 1):
        if 0 <= j < len(ks):
            diff = selection.heldout[j] - selection.heldout[i]
            se = diff.std(ddof=1) / np.sqrt(diff.size)
            out[str(ks[j])] = float(diff.mean() / se) if se > 0 else float("inf")
    return out


def summarise(rows):
    out = {}
    for kind in sorted({r["fold_kind"] for r in rows if "true_k" in r}):
        cases = [r for r in rows if r.get("fold_kind") == kind and "true_k" in r]
        if not cases:
            continue
        right = sum(r["suggested_k"] == r["true_k"] for r in cases)
        off = max(abs(r["suggested_k"] - r["true_k"]) for r in cases)
        out[kind] = {
            "cases": len(cases),
            "suggested_true_k": right,
            "fraction_true_k": right / len(cases),
            "largest_error": off,
            "best_is_true_k": sum(r["best_k"] == r["true_k"] for r in cases),
            "median_seconds": float(np.median([r["seconds"] for r in cases])),
        }
    return out


def sample_case(kind, n_folds):
    from espm_cli.analysis.select_k import select_from_config

    started = time.perf_counter()
    config = {"file": str(HERE.parent / "sample_data" / "sample.hspy")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection = select_from_config(config, range(2, 7), n_folds=n_folds, fold_kind=kind)
    return {
        "case": "sample_data/sample.hspy",
        "expected_k": 3,
        "fold_kind": kind,
        "n_folds": n_folds,
        "suggested_k": selection.suggested_k,
        "best_k": selection.best_k,
        "seconds": time.perf_counter() - started,
        "curve": selection.rows(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--doses", default="100,300")
    parser.add_argument("--kinds", default="speckle")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(c.name for c in CASES))
    parser.add_argument("--sample", action="store_true")
    parser.add_argument("--below", type=int, default=2, help="k from true k - BELOW")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_select_k.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = []
    payload = {
        "command": " ".join(sys.argv),
        "machine": "2 cores shared with 5 other jobs (noisy)",
        "fit": {"simplex": "H", "defaults": "espm_cli.analysis.defaults"},
        "rows": rows,
    }

    def write():
        payload["summary"] = summarise(rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1) + "\n")

    chosen = [c for c in CASES if c.name in args.cases.split(",")]
    for kind in args.kinds.split(","):
        if args.sample:
            rows.append(sample_case(kind, args.folds))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
            write()
        for case in chosen:
            for dose in (float(d) for d in args.doses.split(",")):
                for seed in (int(s) for s in args.seeds.split(",")):
                    rows.append(run_case(case, dose, args.size, seed, kind, args.folds, args.below))
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
                    write()
    write()
    print(json.dumps(payload["summary"], indent=1))


if __name__ == "__main__":
    main()
