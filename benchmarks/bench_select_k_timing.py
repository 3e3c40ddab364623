"""What a user waits for in ``espm select-k --k 2..8`` on a 128 x 128 x 2000 image.

One simulated image (``espm simulate``, three phases, ~300 counts per pixel) is swept over
k = 2..8 with the default 3 speckle folds (4 fits per k: the whole image and one per fold),
as a separate process, start and file reading included, ``--jobs`` 1 and 2. Beside it, in
the same run, one held-out-fold fit (k = 4, 50 iterations, a third of the entries left
out) on the numba backend and on the reference backend: the masked-entry kernels' ratio.

Run (the command that made benchmarks/results/bench_select_k_timing.json)::

    .venv/bin/python benchmarks/bench_select_k_timing.py --jobs 2,1
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ESPM = str(Path(sys.executable).with_name("espm"))


def sweep_seconds(image, jobs, out):
    started = time.perf_counter()
    result = subprocess.run(
        [ESPM, "select-k", str(image), "--k", "2..8", "--jobs", str(jobs), "--force", "-q", "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    suggested = [line for line in result.stdout.splitlines() if line.startswith("suggested k")]
    return seconds, suggested[0] if suggested else result.stdout.strip().splitlines()[-1]


def masked_fit_seconds(image):
    import hyperspy.api as hs

    from espm_cli.analysis.select_k import make_folds
    from espm_cli.solver import SmoothNMF

    signal = hs.load(str(image))
    X = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    held = make_folds(X.shape[0], X.shape[1], 3, seed=0) == 0
    rows = {}
    for backend in ("numba", "reference"):
        estimator = SmoothNMF(4, mask=held, backend=backend, max_iter=50, tol=0.0, random_state=0)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X)
        rows[backend] = {"seconds": time.perf_counter() - started, "loss": float(estimator.losses_[-1].sum())}
    rows["reference_over_numba"] = rows["reference"]["seconds"] / rows["numba"]["seconds"]
    rows["relative_loss_difference"] = abs(rows["numba"]["loss"] - rows["reference"]["loss"]) / abs(
        rows["reference"]["loss"]
    )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="2,1")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_select_k_timing.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "sim128.hspy"
        subprocess.run(
            [
                ESPM,
                "simulate",
                str(image),
                "--size",
                "128",
                "128",
                "--channels",
                "2000",
                "--dose",
                "300",
                "-q",
            ],
            check=True,
        )
        sweeps = []
        for jobs in (int(v) for v in args.jobs.split(",")):
            seconds, suggested = sweep_seconds(image, jobs, Path(folder) / f"out{jobs}")
            sweeps.append({"jobs": jobs, "seconds": seconds, "result": suggested})
            print(f"select-k 2..8, --jobs {jobs}: {seconds:.1f} s ({suggested})")
        fold_fit = masked_fit_seconds(image)
        print(
            f"one fold fit: numba {fold_fit['numba']['seconds']:.2f} s, reference "
            f"{fold_fit['reference']['seconds']:.2f} s ({fold_fit['reference_over_numba']:.1f}x)"
        )
    record = {
        "command": "benchmarks/bench_select_k_timing.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{os.cpu_count()} cores, shared (noisy)",
        "image": "espm simulate --size 128 128 --channels 2000 --dose 300 (3 phases)",
        "target_seconds": 60,
        "sweeps": sweeps,
        "fold_fit_k4_50_iterations": fold_fit,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
