"""Large data: lazy (out-of-core) fit, 2-worker dask.distributed fit, mini-batch vs full.

A simulated N x N x 2048-channel spectrum image (~300 counts per pixel, the espm_cli.simulate
model: 3 phases, physics G) is drawn a block of rows at a time and written chunked to
disk (.zspy, zarr, uint16, chunks of 32 rows), so no dense copy of it is ever made. Then,
each case in its own subprocess (peak RSS of that process, ``ru_maxrss``):

- ``in_memory``: ``load_spectrum_image`` (CSR of the nonzeros) + ``SmoothNMF.fit``;
- ``lazy``: ``load_spectrum_image(lazy=True)`` (a dask array over the file) +
  ``SmoothNMF.fit`` of that array: what ``espm decompose --lazy`` runs;
- ``distributed``: a LocalCluster of 2 worker processes (1 thread each) started by the
  case, ``fit_distributed`` of the lazy array (each worker reads its blocks from the
  file); peak RSS of the client and of each worker; bytes moved per iteration;
- ``minibatch``: ``MiniBatchSmoothNMF`` for 1, 2, 4 epochs: its exact final objective
  and time, beside the time the full fit (same data, from its own start) took to reach
  the same objective (from its per-iteration objectives and times).

Seconds per iteration: the median time between iteration callbacks of a ``tol=0`` fit of
``--iterations`` iterations (``extrapolate=False``, so each iteration is one H and one W
step); for the distributed fit the median map-reduce time (``iteration_seconds_``).

Run::

    .venv/bin/python benchmarks/bench_large.py --size 512 --out benchmarks/results/bench_large.json
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's espm_cli

N_CHANNELS = 2048
DOSE = 300.0
ROWS_PER_CHUNK = 32


def simulate_to_disk(size, path, seed=0):
    """Draw the image a block of rows at a time into a chunked .zspy; returns its truth."""
    import dask.array as da
    import hyperspy.api as hs

    from espm_cli.simulate.maps import abundance_maps
    from espm_cli.simulate.phases import DEFAULT_PHASES, elements_of
    from espm_cli.simulate.synthetic import (
        SimulationSettings,
        _edx_model,
        phase_weights,
    )

    settings = SimulationSettings(
        size=(size, size), dose=DOSE, n_channels=N_CHANNELS, shapes=("particles", "layer"), seed=seed
    )
    phases = tuple(DEFAULT_PHASES)[:3]
    model = _edx_model(settings, elements_of(phases))
    W = phase_weights(model, phases, settings.continuum_fraction) * DOSE
    rng = np.random.default_rng(seed)
    maps = abundance_maps((size, size), len(phases), settings.shapes, rng=rng)
    spectra = model.G @ W  # (c, k)

    def block(block_id=None):
        row = block_id[0] * ROWS_PER_CHUNK
        H = maps[:, row : row + ROWS_PER_CHUNK].reshape(len(phases), -1)
        local = np.random.default_rng([seed, row])
        counts = local.poisson((spectra @ H).T).astype(np.uint16)
        return counts.reshape(-1, size, N_CHANNELS)

    chunks = ((ROWS_PER_CHUNK,) * (size // ROWS_PER_CHUNK), (size,), (N_CHANNELS,))
    data = da.map_blocks(block, chunks=chunks, dtype=np.uint16)
    signal = hs.signals.Signal1D(data).as_lazy()
    signal.data = data
    signal.set_signal_type("EDS_TEM")
    axis = signal.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units = 0.0, 0.01, "keV"
    signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", settings.beam_energy_keV)
    signal.metadata.set_item(
        "Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa", settings.mnka_fwhm_eV
    )
    signal.metadata.set_item(
        "Acquisition_instrument.TEM.Detector.EDS.elevation_angle", settings.elevation_deg
    )
    signal.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.azimuth_angle", settings.azimuth_deg)
    signal.metadata.set_item("Sample.elements", list(elements_of(phases)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal._assign_subclass()
        signal.save(str(path), overwrite=True, chunks=(ROWS_PER_CHUNK, size, N_CHANNELS))
    return {"phases": [phase.name for phase in phases], "elements": list(elements_of(phases))}


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _estimator(image, iterations, elements):
    from espm_cli.analysis import make_estimator
    from espm_cli.analysis.run import prepare

    config = {
        "elements": elements,
        "beam_energy": None,
        "elevation": None,
        "azimuth": None,
        "tilt": None,
        "mnka_fwhm": None,
        "thickness": None,
        "density": None,
        "no_physics": False,
        "energy_range": None,
        "ignore_elements": None,
    }
    window, model = prepare(image, config)
    fitted = image if window.is_whole_axis else image.select_channels(window.start, window.stop)
    estimator = make_estimator(3, model, image.shape_2d, max_iter=iterations, tol=0.0, extrapolate=False)
    return estimator, fitted


def run_case(case, path, iterations, elements):
    """One measurement (in this process); returns a dict."""
    from espm_cli.io import load_spectrum_image

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    lazy = case != "in_memory"
    image = load_spectrum_image(path, lazy=lazy)
    estimator, fitted = _estimator(image, iterations, elements)
    from espm_cli.analysis import fit_matrix

    counts = fit_matrix(fitted.counts)
    loaded = time.perf_counter() - started
    out = {
        "case": case,
        "load_seconds": loaded,
        "n_pixels": image.n_pixels,
        "n_channels_fitted": fitted.n_channels,
    }
    if case == "distributed":
        import distributed

        from espm_cli.solver.distributed import fit_distributed

        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            started = time.perf_counter()
            fit_distributed(estimator, counts, client)
            out["fit_seconds"] = time.perf_counter() - started
            workers = client.run(_peak_mb)
        out["seconds_per_iteration"] = float(np.median(estimator.iteration_seconds_))
        out["bytes_per_iteration"] = estimator.bytes_per_iteration_
        out["worker_peak_rss_mb"] = sorted(workers.values())
    else:
        stamps = []
        estimator.set_params(callback=lambda n, row: stamps.append(time.perf_counter()))
        started = time.perf_counter()
        estimator.fit(counts)
        out["fit_seconds"] = time.perf_counter() - started
        out["seconds_per_iteration"] = float(np.median(np.diff(stamps)))
        out["start_seconds"] = stamps[0] - started - out["seconds_per_iteration"]
    out["n_iter"] = int(estimator.n_iter_)
    out["objective"] = float(estimator.losses_[-1, -1])
    out["peak_rss_mb"] = _peak_mb()
    return out


def run_minibatch(path, elements, epochs=(1, 2, 4), full_iterations=60):
    """Mini-batch epochs vs the full fit: time to the mini-batch's objective."""
    from espm_cli.analysis.defaults import ESTIMATOR_DEFAULTS  # noqa: F401
    from espm_cli.io import load_spectrum_image
    from espm_cli.solver.minibatch import MiniBatchSmoothNMF

    warnings.simplefilter("ignore")
    image = load_spectrum_image(path)
    estimator, fitted = _estimator(image, full_iterations, elements)
    from espm_cli.analysis import fit_matrix

    counts = fit_matrix(fitted.counts)
    estimator.set_params(extrapolate=True)  # the full fit as users run it
    stamps, objectives = [], []

    def record(n, row):
        stamps.append(time.perf_counter())
        objectives.append(float(row[-1]))

    estimator.set_params(callback=record)
    started = time.perf_counter()
    estimator.fit(counts)
    full_times = np.array(stamps) - started
    rows = []
    params = {
        name: value
        for name, value in estimator.get_params().items()
        if name in MiniBatchSmoothNMF().get_params()
    }
    for n_epochs in epochs:
        minibatch = MiniBatchSmoothNMF(
            **{**params, "max_iter": n_epochs, "tol": 0.0, "batch_size": 16384, "max_no_improvement": None}
        )
        started = time.perf_counter()
        minibatch.fit(counts)
        seconds = time.perf_counter() - started
        reached = np.flatnonzero(np.array(objectives) <= minibatch.objective_)
        rows.append(
            {
                "epochs": n_epochs,
                "minibatch_seconds": seconds,
                "minibatch_objective": minibatch.objective_,
                "full_seconds_to_same_objective": (float(full_times[reached[0]]) if reached.size else None),
                "full_iterations_to_same_objective": (int(reached[0]) + 1 if reached.size else None),
            }
        )
    return {
        "case": "minibatch",
        "full_final_objective": objectives[-1],
        "full_seconds": float(full_times[-1]),
        "full_n_iter": len(objectives),
        "rows": rows,
        "peak_rss_mb": _peak_mb(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--cases", default="in_memory,lazy,distributed,minibatch")
    parser.add_argument("--data", default="benchmarks/data/large")
    parser.add_argument("--out", default="benchmarks/results/bench_large.json")
    parser.add_argument(
        "--rerun", help="measure --cases again on the existing file and JSON, noting this text (why) in each"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--elements", help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = Path(args.data) / f"large_{args.size}.zspy"
    if args.case:  # a subprocess: one case, JSON on stdout
        elements = args.elements.split(",")
        result = (
            run_minibatch(path, elements)
            if args.case == "minibatch"
            else run_case(args.case, path, args.iterations, elements)
        )
        print(json.dumps(result))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rerun:  # measure some cases again on the file already written; keep the others
        from espm_cli.simulate.phases import DEFAULT_PHASES, elements_of

        truth = {"elements": list(elements_of(tuple(DEFAULT_PHASES)[:3]))}
        results = json.loads(Path(args.out).read_text())
        for case in args.cases.split(","):
            command = [
                sys.executable,
                __file__,
                "--size",
                str(args.size),
                "--iterations",
                str(args.iterations),
                "--data",
                args.data,
                "--case",
                case,
                "--elements",
                ",".join(truth["elements"]),
            ]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["rerun"] = args.rerun
            results["cases"] = [c for c in results["cases"] if c["case"] != case] + [result]
            print(json.dumps(result), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        return
    started = time.perf_counter()
    truth = simulate_to_disk(args.size, path)
    simulate_seconds = time.perf_counter() - started
    results = {
        "size": [args.size, args.size, N_CHANNELS],
        "dose": DOSE,
        "file": path.name,
        "simulate_and_write_seconds": simulate_seconds,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "iterations": args.iterations,
        "cases": [],
    }
    for case in args.cases.split(","):
        command = [
            sys.executable,
            __file__,
            "--size",
            str(args.size),
            "--iterations",
            str(args.iterations),
            "--data",
            args.data,
            "--case",
            case,
            "--elements",
            ",".join(truth["elements"]),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        )
        if done.returncode != 0:
            results["cases"].append({"case": case, "error": done.stderr.strip().splitlines()[-1]})
        else:
            results["cases"].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results["cases"][-1]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
