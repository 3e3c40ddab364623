"""Which simplex default: H, W or none, measured on the real files and the simulated truth.

For each file and each ``simplex`` the run's defaults otherwise (k = 3, nndsvda, seed 0,
200 iterations, tol 1e-4), through the one workflow (``espm_cli.analysis.run``): how many
phases come out as real phases / continuum / empty, the abundance the non-phases take,
the elements detected, the final KL divergence; on the simulated sample also how close
each phase came to the truth (spectral angle, at.% error). The JEOL .pts file (no
elements in its metadata) runs with ``--elements C,O,Si,Fe,Cu --bin 4``.

Run (about 3 minutes on 2 cores)::

    .venv/bin/python benchmarks/simplex_choice.py --out benchmarks/results/simplex_choice.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO / ".." / "shared" / "realdata"
FILES = {
    "30x30_instructively_packed_16bit_compressed.bcf": {},
    "88_ES-LP_G8_selection2_cropped2.hspy": {},
    "Hitachi_TM3030Plus.bcf": {},
    "View000_0000006.pts": {"elements": ["C", "O", "Si", "Fe", "Cu"], "bin": 4},
    "bcf_v2_50x50px.bcf": {},
    "test_TEM.bcf": {},
    "velox_Test_SI_16x16_215kx.emd": {},
}
SAMPLE = REPO / "sample_data" / "sample.hspy"


def measure(path: Path, simplex: str, extra: dict, folder: Path, truth: Path | None = None):
    from espm_cli.analysis import run_decomposition
    from espm_cli.io import read_result
    from espm_cli.report import compare_to_truth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = run_decomposition(
            {
                "file": str(path),
                "simplex": simplex,
                "n_components": 3,
                "output_dir": str(folder),
                "overwrite": True,
                **extra,
            }
        )
    result = outcome.result
    abundance = result.maps.reshape(result.n_components, -1).mean(axis=1)
    kinds = list(result.phase_kinds)
    row = {
        "file": path.name,
        "simplex": simplex,
        "n_iter": result.n_iter,
        "kl_divergence": float(result.loss_history[-1, 0]),
        "kinds": kinds,
        "names": list(result.phase_names),
        "phase_counts": [float(c) for c in result.phase_counts],
        "mean_abundance": [float(a) for a in abundance],
        "abundance_share_not_phase": float(
            sum(a for a, k in zip(abundance, kinds) if k != "phase") / max(abundance.sum(), 1e-300)
        ),
        "detected_elements": sorted(
            {e for i, e in enumerate(result.elements) if result.detected[:, i].any()}
        ),
    }
    if truth is not None:
        matches = compare_to_truth(result, read_result(truth))
        row["truth"] = [
            {
                "true": m.true,
                "fitted": m.fitted,
                "angle_deg": m.spectral_angle_deg,
                "map_correlation": m.map_correlation,
                "at_percent_error": m.atomic_percent_error,
            }
            for m in matches
        ]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "simplex_choice.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(SAMPLE, {}, SAMPLE.with_name("sample_truth.h5"))]
        cases += [
            (REALDATA / name, extra, None) for name, extra in FILES.items() if (REALDATA / name).exists()
        ]
        for path, extra, truth in cases:
            for simplex in ("H", "W", "none"):
                row = measure(path, simplex, extra, Path(tmp) / f"{path.stem}_{simplex}", truth)
                rows.append(row)
                print(
                    f"{row['file']:50s} {simplex:4s} {' / '.join(row['names'])}  "
                    f"not-phase abundance {row['abundance_share_not_phase']:.2f}  "
                    f"KL {row['kl_divergence']:.6g}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1, default=float) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
