"""Seconds per iteration on an NVIDIA GPU beside the CPU numba backend, and the sample end to end.

One prepared script for a machine with a GPU (``pip install -e '.[gpu]'``: CuPy; PyTorch
works too, ``--gpu-backend torch``). It writes one JSON file and prints a short table.

Per case (size x configuration x backend) it records

- ``seconds_per_iteration``: one majorize-minimize iteration as the fit loop runs it
  (objective + H-step statistics in one pass, H step, W step), the median of timed
  iterations after two warm-up ones (the objective's three floats come back to the host
  every iteration, so each iteration ends synchronised);
- ``prepare_seconds``: moving X to the device (CSR of the nonzeros) once;
- ``read_once_seconds``: one pass reading the nonzeros on the device (the bound);
- ``final_objective`` after the timed iterations and ``objective_vs_numba``: its relative
  difference from the numba backend's after the same iterations from the same start.

Sizes: 256x256 pixels x 2000 channels and 1024x1024 x 2048 (the issue's), sparse Poisson
counts (``--dose`` counts per pixel, 3 phases, a 12-column physics-like G from
bench_fast.py). Configurations: "plain" (KL-NMF, G = identity, no regulariser: the
issue's 4.9 ms reference is this at 256x256 x 2000, dense) and "physics" (G, Laplacian
λ = 2, log sparsity μ = 0.1, simplex on H: what ``espm decompose`` runs). The GPU runs
float32 (its default) and float64; the CPU numba backend float64 (its default).
``--dense`` adds the dense-X GPU path at the smaller size.

The sample: ``espm decompose sample_data/sample.hspy`` through the workflow
(``run_decomposition``), with ``--backend auto`` (numba) and ``--backend cuda``, twice each
(the first GPU run includes CuPy's kernel compilation); ``fit_seconds`` from the result
and the largest relative difference of the maps and of W.

Run (on the GPU machine; about 5 minutes)::

    python benchmarks/bench_gpu.py --out benchmarks/results/bench_gpu.json

``--sizes 256`` or ``--quick`` (fewer timed iterations) for a shorter run.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SIZES = {256: 2000, 1024: 2048}  # side -> channels
CONFIGS = {
    "plain": dict(physics=False, lambda_L=0.0, mu=0.0, simplex=False),
    "physics": dict(physics=True, lambda_L=2.0, mu=0.1, simplex=True),
}


def physics_matrix(n_channels):
    from bench_fast import synthetic_physics_matrix

    return synthetic_physics_matrix(n_channels=n_channels)


def synthetic_counts(side, n_channels, dose, seed=0, k=3):
    """X (side², n_channels) CSR float32: Poisson counts, sampled event by event.

    A Poisson number of counts per pixel, each given a phase by the pixel's abundances and
    a channel by that phase's spectrum: the same law as independent Poisson counts per
    entry, at the cost of the counts, not of the entries.
    """
    from bench_fast import synthetic_maps

    rng = np.random.default_rng(seed)
    G, continuum = physics_matrix(n_channels)
    W = np.zeros((G.shape[1], k))
    n_elements = int((~continuum).sum())
    for q in range(k):
        elements = rng.choice(n_elements, size=4, replace=False)
        W[elements, q] = 0.7 * rng.dirichlet(np.ones(4))
        W[continuum, q] = [0.2, 0.1]
    spectra = G @ W
    spectra /= spectra.sum(axis=0)
    H = synthetic_maps(side, n_components=k, seed=seed)  # (k, p), columns sum to 1
    totals = rng.poisson(dose, H.shape[1])
    pixel = np.repeat(np.arange(H.shape[1]), totals)
    u = rng.random(pixel.size)
    cumulative = np.cumsum(H, axis=0)
    phase = np.zeros(pixel.size, np.int64)
    for q in range(k - 1):
        phase += u > cumulative[q, pixel]
    channel = np.empty(pixel.size, np.int64)
    cdf = np.cumsum(spectra, axis=0)
    v = rng.random(pixel.size)
    for q in range(k):
        chosen = phase == q
        channel[chosen] = np.minimum(np.searchsorted(cdf[:, q], v[chosen]), n_channels - 1)
    X = sp.csr_matrix((np.ones(pixel.size, np.float32), (pixel, channel)), shape=(H.shape[1], n_channels))
    X.sum_duplicates()
    return X, G, continuum


def start(G, n_pixels, k, seed=1):
    """A feasible start: W, H > 0, columns of H on the simplex."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.5, 1.0, (G.shape[1], k))
    H = rng.uniform(0.5, 1.0, (k, n_pixels))
    return W, H / H.sum(axis=0)


def device_info():
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["cupy"] = cupy.__version__
    except Exception as error:  # noqa: BLE001 (recorded, not fatal)
        info["cupy"] = f"unavailable: {type(error).__name__}: {error}"
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info.setdefault("gpu", torch.cuda.get_device_name(0))
    except Exception as error:  # noqa: BLE001
        info["torch"] = f"unavailable: {type(error).__name__}"
    try:
        import os

        info["cpu_count"] = os.cpu_count()
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except Exception:  # noqa: BLE001
        pass
    return info


def time_iterations(backend_name, X, G, W0, H0, config, shape_2d, dtype, n_timed, budget_s):
    """Seconds per MM iteration (median) and the objective after the timed iterations."""
    from espm_cli.solver import get_backend

    backend = get_backend(backend_name)
    t0 = time.perf_counter()
    data = backend.prepare_counts(X, np.dtype(dtype))
    prepare = time.perf_counter() - t0
    G, W, H = (np.asarray(a, dtype=dtype) for a in (G, W0, H0))
    if backend.to_device is not None:
        G, W, H = (backend.to_device(data, a) for a in (G, W, H))
    regularisation = dict(
        shape_2d=shape_2d, lambda_L=config["lambda_L"], mu=np.full(W.shape[1], config["mu"]), epsilon_reg=1.0
    )

    def evaluate(W, H):
        if backend.evaluate is None:
            return backend.objective_terms(data, G, W, H, **regularisation), None
        return backend.evaluate(data, G, W, H, **regularisation)

    terms, workspace = evaluate(W, H)
    times = []
    n_done = 0
    begin = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        shared = {} if workspace is None else {"workspace": workspace}
        H = backend.h_step(
            data, G, W, H, simplex=config["simplex"], fixed=None, eps=1e-10, **regularisation, **shared
        )
        W = backend.w_step(data, G, W, H, simplex_rows=None, fixed=None, eps=1e-10)
        terms, workspace = evaluate(W, H)  # three floats to the host: synchronised
        n_done += 1
        if n_done > 2:  # two warm-up iterations (compilation, caches)
            times.append(time.perf_counter() - t0)
        if n_done >= 2 + n_timed and (time.perf_counter() - begin > budget_s or n_done >= 2 + 4 * n_timed):
            break
        if n_done >= 3 and time.perf_counter() - begin > 10 * budget_s:
            break
    read_once = None
    nonzeros = getattr(data, "nonzeros", None) if hasattr(data, "xp") else None
    if nonzeros is not None:
        xp = data.xp
        float(xp.sum(nonzeros.values))
        t0 = time.perf_counter()
        float(xp.sum(nonzeros.values))
        read_once = time.perf_counter() - t0
    return {
        "seconds_per_iteration": statistics.median(times),
        "n_timed": len(times),
        "min_seconds": min(times),
        "prepare_seconds": prepare,
        "read_once_seconds": read_once,
        "iterations": n_done,
        "final_objective": float(np.sum(terms)),
    }


def run_cases(args, gpu):
    cases = []
    for side in args.sizes:
        n_channels = SIZES[side]
        dose = args.dose if args.dose else (300.0 if side <= 256 else 100.0)
        t0 = time.perf_counter()
        X, G_physics, _ = synthetic_counts(side, n_channels, dose)
        made = time.perf_counter() - t0
        print(
            f"{side}x{side}x{n_channels}: {X.nnz} nonzeros "
            f"({100 * X.nnz / (X.shape[0] * X.shape[1]):.2f} %), made in {made:.1f} s",
            flush=True,
        )
        for name, config in CONFIGS.items():
            G = G_physics if config["physics"] else np.eye(n_channels)
            W0, H0 = start(G, X.shape[0], 3)
            runs = [("numba", "float64", X)] + [(gpu, "float32", X), (gpu, "float64", X)]
            if args.dense and side <= 256:
                runs.append((gpu, "float32", X.toarray()))
            numba_objective = None
            for backend, dtype, data in runs:
                label = f"{side}x{side}x{n_channels} {name} {backend} {dtype}" + (
                    " dense" if isinstance(data, np.ndarray) else ""
                )
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        row = time_iterations(
                            backend,
                            data,
                            G,
                            W0,
                            H0,
                            config,
                            (side, side),
                            dtype,
                            args.iterations,
                            args.budget,
                        )
                except Exception as error:  # noqa: BLE001 (recorded; the next case runs)
                    row = {"error": f"{type(error).__name__}: {error}"}
                row.update(
                    size=[side, side, n_channels],
                    config=name,
                    backend=backend,
                    dtype=dtype,
                    dense=isinstance(data, np.ndarray),
                    nnz=int(X.nnz),
                    counts_per_pixel=dose,
                )
                if backend == "numba" and "final_objective" in row:
                    numba_objective = row["final_objective"]
                if numba_objective is not None and "final_objective" in row:
                    row["objective_vs_numba"] = abs(row["final_objective"] - numba_objective) / abs(
                        numba_objective
                    )
                cases.append(row)
                shown = (
                    f"{1e3 * row['seconds_per_iteration']:.3f} ms/iteration"
                    if "seconds_per_iteration" in row
                    else row["error"]
                )
                print(f"  {label}: {shown}", flush=True)
    return cases


def run_sample(gpu):
    """``espm decompose sample_data/sample.hspy`` with auto (numba) and the GPU, twice each."""
    from espm_cli.analysis.run import run_decomposition

    sample = REPO / "sample_data" / "sample.hspy"
    out = {}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for backend in ("auto", gpu, "auto", gpu):
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcome = run_decomposition(
                        {
                            "file": str(sample),
                            "backend": backend,
                            "output_dir": str(Path(folder) / backend),
                            "overwrite": True,
                        }
                    )
            except Exception as error:  # noqa: BLE001
                out.setdefault(backend, []).append({"error": f"{type(error).__name__}: {error}"})
                continue
            result = outcome.result
            out.setdefault(backend, []).append(
                {
                    "wall_seconds": time.perf_counter() - t0,
                    "fit_seconds": float(result.fit_seconds),
                    "n_iter": int(result.n_iter),
                }
            )
            results[backend] = result
    if "auto" in results and gpu in results:
        a, b = results["auto"], results[gpu]
        out["maps_relative_difference"] = float(np.max(np.abs(b.maps - a.maps)) / np.max(np.abs(a.maps)))
        out["W_relative_difference"] = float(np.max(np.abs(b.W - a.W)) / np.max(np.abs(a.W)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_gpu.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(SIZES), choices=sorted(SIZES))
    parser.add_argument(
        "--gpu-backend",
        default="cuda",
        choices=("cuda", "cupy", "torch", "array-api"),
        help="array-api: a dry run of this script on the CPU (numpy)",
    )
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (at least)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per case (about)")
    parser.add_argument("--dose", type=float, default=None, help="counts per pixel")
    parser.add_argument("--dense", action="store_true", help="also the dense GPU path (256)")
    parser.add_argument("--quick", action="store_true", help="3 timed iterations, 1 s per case")
    parser.add_argument("--no-sample", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.budget = 3, 1.0
    report = {
        "device": device_info(),
        "command": " ".join(sys.argv),
        "cases": [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(report["device"]), flush=True)
    report["cases"] = run_cases(args, args.gpu_backend)
    if not args.no_sample:
        report["sample"] = run_sample(args.gpu_backend)
        print("sample:", json.dumps(report["sample"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
