"""Coverage of the bootstrap error bars on simulated images with a known truth.

A phantom (the bundled sample's three phases: silicate matrix, FePt particles, TiO2
layer; ``espm_cli.simulate``) gives the expected counts G W H; each noise seed draws
Poisson counts of it, which are fitted with the decompose defaults (simplex H, the vertex
start) and given error bars by :func:`espm_cli.analysis.uncertainty.bootstrap_uncertainty`.
Fitted phases are matched to the true ones by spectral angle. For every (draw, phase,
detected element) the error |at.% − true at.%| is compared with the 1σ bar: the share
within 1σ is the coverage (68 % if the bars are right and the estimate unbiased), within
2σ (95 %). Also the spread of the estimates over the noise seeds (the true sampling error)
beside the mean bootstrap σ, and the mean error (bias).

Run (the command that made benchmarks/results/bench_uncertainty.json)::

    .venv/bin/python benchmarks/bench_uncertainty.py --size 32 --noise-seeds 30 --phantoms 0,1
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def phantom(size, seed, dose):
    from espm_cli.simulate import SimulationSettings, simulate
    from espm_cli.simulate.synthetic import _edx_model

    settings = SimulationSettings(size=(size, size), seed=seed, dose=dose, n_channels=2048)
    simulation = simulate(settings)
    model = _edx_model(settings, simulation.elements)
    truth = simulation.truth
    k = truth.W.shape[1]
    expected = (model.G @ truth.W) @ truth.maps.reshape(k, -1)  # (channels, pixels)
    return model, truth, expected


def fit_one(X, model, shape, k, n_draws, n_iterations, seed):
    from espm_cli.analysis import describe_phases, make_estimator
    from espm_cli.analysis.uncertainty import bootstrap_uncertainty

    estimator = make_estimator(k, model, shape, simplex="H")
    estimator.fit(X)
    description = describe_phases(estimator.G_, estimator.W_, estimator.H_, model)
    started = time.perf_counter()
    uncertainty = bootstrap_uncertainty(
        estimator, model, description.detected, n_draws=n_draws, n_iterations=n_iterations, seed=seed
    )
    return estimator, description, uncertainty, time.perf_counter() - started


def match(model, W, truth_W):
    from scipy.optimize import linear_sum_assignment

    a = (model.G @ W).T
    b = (model.G @ truth_W).T
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    angles = np.degrees(np.arccos(np.clip(a @ b.T, -1, 1)))
    rows, columns = linear_sum_assignment(angles)
    return dict(zip(columns, rows)), float(angles[rows, columns].max())


def main(argv=None):
    import scipy.sparse as sp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--dose", type=float, default=200.0)
    parser.add_argument("--noise-seeds", type=int, default=30)
    parser.add_argument("--phantoms", default="0,1")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--iterations", default="30")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_uncertainty.json"))
    args = parser.parse_args(argv)
    rows = []
    payload = {
        "command": " ".join(sys.argv),
        "machine": f"{os.cpu_count()} cores, shared (noisy)",
        "error_bar": "RMS deviation of the bootstrap draws from the fit",
        "rows": rows,
    }
    out = Path(args.out)
    for n_iterations in (int(v) for v in args.iterations.split(",")):
        for phantom_seed in (int(v) for v in args.phantoms.split(",")):
            model, truth, expected = phantom(args.size, phantom_seed, args.dose)
            k = truth.W.shape[1]
            rng = np.random.default_rng(1000 + phantom_seed)
            for noise in range(args.noise_seeds):
                X = sp.csr_matrix(rng.poisson(expected.T))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    estimator, description, uncertainty, seconds = fit_one(
                        X, model, (args.size, args.size), k, args.draws, n_iterations, noise
                    )
                mapping, worst_angle = match(model, estimator.W_, truth.W)
                for true_phase in range(k):
                    fitted = mapping[true_phase]
                    for j, element in enumerate(description.elements):
                        true_value = float(truth.composition[true_phase][list(truth.elements).index(element)])
                        value = float(description.composition[fitted, j])
                        sd = float(uncertainty.composition_sd[fitted, j])
                        if not np.isfinite(value) or true_value <= 0:
                            continue
                        rows.append(
                            {
                                "iterations": n_iterations,
                                "phantom": phantom_seed,
                                "noise": noise,
                                "phase": truth.phase_names[true_phase],
                                "element": element,
                                "true": true_value,
                                "fitted": value,
                                "sd": sd,
                                "z": (value - true_value) / sd if sd > 0 else None,
                                "seconds_bootstrap": seconds,
                                "worst_angle_deg": worst_angle,
                            }
                        )
                print(
                    f"iterations {n_iterations} phantom {phantom_seed} noise {noise}: {seconds:.1f} s",
                    flush=True,
                )
                payload["summary"] = summarise(rows)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload["summary"], indent=1))


def summarise(rows):
    out = {}
    for n_iterations in sorted({r["iterations"] for r in rows}):
        chosen = [r for r in rows if r["iterations"] == n_iterations and r["z"] is not None]
        z = np.abs([r["z"] for r in chosen])
        per_value = {}
        for r in chosen:
            per_value.setdefault((r["phantom"], r["phase"], r["element"]), []).append(r)
        spread = []
        for key, group in per_value.items():
            if len(group) < 3:
                continue
            fitted = np.array([g["fitted"] for g in group])
            spread.append(
                {
                    "phantom": key[0],
                    "phase": key[1],
                    "element": key[2],
                    "true": group[0]["true"],
                    "mean_fitted": float(fitted.mean()),
                    "bias": float(fitted.mean() - group[0]["true"]),
                    "sd_over_noise_seeds": float(fitted.std(ddof=1)),
                    "mean_bootstrap_sd": float(np.mean([g["sd"] for g in group])),
                }
            )
        out[str(n_iterations)] = {
            "values": int(z.size),
            "within_1_sigma": float(np.mean(z <= 1)),
            "within_2_sigma": float(np.mean(z <= 2)),
            "ratio_sampling_sd_to_bootstrap_sd": float(
                np.median([s["sd_over_noise_seeds"] / s["mean_bootstrap_sd"] for s in spread])
            )
            if spread
            else None,
            "per_value": spread,
        }
    return out


if __name__ == "__main__":
    main()
