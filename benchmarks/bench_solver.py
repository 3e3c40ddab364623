"""Benchmark: SmoothNMF fit time and peak memory beside scikit-learn's KL NMF.

Synthetic Poisson spectrum images (3 phases, Gaussian-peak spectra on a smooth
background, ~300 counts per pixel, 2000 channels) of 64x64, 128x128 and 256x256 pixels.
Every (size, method) case runs in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own; ``fit_peak_increase_MiB`` is the peak during the fit minus the
peak before it (interpreter, imports, X and its generation in blocks of 1024 pixels). Both methods run exactly ``--max-iter`` iterations (tol=0),
from NNDSVD-a, on the same matrix.

Usage::

    python benchmarks/bench_solver.py                         # full run, writes the JSON
    python benchmarks/bench_solver.py --sizes 64 --max-iter 10 --output /tmp/quick.json
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bench_solver.json"
N_CHANNELS = 2000
N_PHASES = 3
COUNTS_PER_PIXEL = 300.0


def synthetic_counts(side, n_channels=N_CHANNELS, seed=0, block=1024):
    """CSR (side*side, n_channels) Poisson counts of a 3-phase image, built in pixel blocks."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    background = np.exp(-channels / (0.4 * n_channels)) * (0.2 + channels / n_channels)
    spectra = []
    for _phase in range(N_PHASES):
        spectrum = background.copy()
        for centre in rng.uniform(0.05, 0.95, 4) * n_channels:
            spectrum += rng.uniform(1, 5) * np.exp(-0.5 * ((channels - centre) / 8.0) ** 2)
        spectra.append(spectrum / spectrum.sum())
    spectra = np.array(spectra)  # (phases, channels), each sums to 1
    yy, xx = np.mgrid[:side, :side] / side
    centres = [(0.25, 0.3), (0.7, 0.35), (0.5, 0.8)]
    logits = np.stack([-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02 for cx, cy in centres])
    maps = np.exp(logits - logits.max(axis=0))
    maps = (maps / maps.sum(axis=0)).reshape(N_PHASES, -1)
    blocks = []
    for start in range(0, side * side, block):
        rate = COUNTS_PER_PIXEL * maps[:, start : start + block].T @ spectra
        blocks.append(sp.csr_array(rng.poisson(rate).astype(np.uint16)))
    return sp.vstack(blocks, format="csr")


def run_case(side, method, max_iter, backend, dense):
    """Fit one case in this process and return its measurements (a dict)."""
    import warnings

    import numpy as np

    X = synthetic_counts(side)
    if dense:
        X = X.toarray()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        if method == "sklearn_nmf_kl_mu":
            from sklearn.decomposition import NMF

            X_float = X.astype(np.float64)
            estimator = NMF(
                N_PHASES,
                beta_loss="kullback-leibler",
                solver="mu",
                init="nndsvda",
                max_iter=max_iter,
                tol=0.0,
                random_state=0,
            )
            estimator.fit(X_float)
            n_iter = estimator.n_iter_
            final = float(estimator.reconstruction_err_)
            final_name = "sklearn reconstruction_err_ (sqrt(2 * KL))"
        else:
            from espm_cli.solver import SmoothNMF

            estimator = SmoothNMF(
                N_PHASES, init="nndsvda", max_iter=max_iter, tol=0.0, random_state=0, backend=backend
            )
            estimator.fit(X)
            n_iter = estimator.n_iter_
            final = float(np.sqrt(2 * estimator.reconstruction_err_))
            final_name = "sqrt(2 * KL), comparable to sklearn's reconstruction_err_"
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "pixels": side * side,
        "shape_2d": [side, side],
        "n_channels": N_CHANNELS,
        "nnz": int(X.nnz) if hasattr(X, "nnz") else int(np.count_nonzero(X)),
        "input": "dense uint16" if dense else "scipy.sparse CSR uint16",
        "method": method,
        "backend": backend if method == "smoothnmf" else None,
        "n_iter": int(n_iter),
        "fit_seconds": seconds,
        "seconds_per_iteration": seconds / max(int(n_iter), 1),
        "peak_rss_MiB": peak / 1024,
        "rss_before_fit_MiB": rss_before / 1024,
        "fit_peak_increase_MiB": (peak - rss_before) / 1024,
        "final_error": final,
        "final_error_meaning": final_name,
    }


def machine_info():
    """CPU, memory, versions, for the JSON header."""
    import numpy
    import scipy
    import sklearn

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_GiB = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_GiB = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        espm_version = version("espm-cli")
    except Exception:  # not installed: the benchmark still runs from a checkout
        espm_version = None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "memory_GiB": memory_GiB,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "espm-cli": espm_version,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[64, 128, 256],
        help="image sides in pixels (default: 64 128 256)",
    )
    parser.add_argument(
        "--max-iter", type=int, default=30, help="iterations per fit, the same for every method (default: 30)"
    )
    parser.add_argument(
        "--backends", nargs="+", default=["reference"], help="SmoothNMF backends to time (default: reference)"
    )
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's NMF")
    parser.add_argument("--dense", action="store_true", help="pass X as a dense uint16 array instead of CSR")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/numba threads per case (default: 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--worker", nargs=4, metavar=("SIDE", "METHOD", "BACKEND", "DENSE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.worker:
        side, method, backend, dense = args.worker
        result = run_case(int(side), method, args.max_iter, backend, dense == "1")
        sys.stdout.write(json.dumps(result) + "\n")
        return 0

    cases = [(side, "smoothnmf", backend) for side in args.sizes for backend in args.backends]
    if not args.no_sklearn:
        cases += [(side, "sklearn_nmf_kl_mu", "-") for side in args.sizes]
    cases.sort(key=lambda case: case[0])
    environment = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        environment[name] = str(args.threads)
    results = []
    for side, method, backend in cases:
        command = [
            sys.executable,
            __file__,
            "--max-iter",
            str(args.max_iter),
            "--worker",
            str(side),
            method,
            backend,
            "1" if args.dense else "0",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if completed.returncode != 0:
            results.append(
                {
                    "pixels": side * side,
                    "method": method,
                    "backend": backend,
                    "error": completed.stderr.strip().splitlines()[-1:],
                }
            )
        else:
            results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        sys.stderr.write(json.dumps(results[-1]) + "\n")
    report = {
        "benchmark": "SmoothNMF vs sklearn NMF(beta_loss='kullback-leibler', solver='mu')",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        "settings": {
            "max_iter": args.max_iter,
            "tol": 0.0,
            "init": "nndsvda",
            "n_components": N_PHASES,
            "n_channels": N_CHANNELS,
            "counts_per_pixel": COUNTS_PER_PIXEL,
            "threads": args.threads,
            "regularisation": "none (plain KL, G = identity) for a like-for-like comparison",
        },
        "machine": machine_info(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
