"""
Decompose the bundled sample
============================

The workflow of ``espm decompose --config configs/run.yaml`` (``make demo``) from Python:
:func:`espm_cli.analysis.run_decomposition` reads the spectrum image, builds G from its
metadata, fits X ≈ G W H and writes the result folder. The result is then compared with
the truth the simulation kept.
"""

# %%
# Run the workflow into a temporary folder
# ----------------------------------------
# The configuration takes the same keys as the command line's long options.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import espm_cli
from espm_cli.analysis import run_decomposition
from espm_cli.io import read_result
from espm_cli.report import compare_to_truth

SAMPLE = Path(espm_cli.__file__).resolve().parents[1] / "sample_data"
output = Path(tempfile.mkdtemp()) / "sample_espm"
outcome = run_decomposition({"file": SAMPLE / "sample.hspy", "n_components": 3, "output_dir": output})
print([path.name for path in outcome.files])

# %%
# The phases: names, compositions and maps
# ----------------------------------------
# Each phase is named after the elements detected in it; ``composition`` is in at.%,
# NaN where an element's lines do not stand above the noise in that phase.
result = read_result(output / "sample.h5")
for name, row in zip(result.phase_names, result.composition):
    cells = ", ".join(
        f"{element} {value:.1f}" for element, value in zip(result.elements, row) if value == value
    )
    print(f"{name}: {cells}")

fig, axes = plt.subplots(1, result.n_components, figsize=(9, 3))
for ax, name, image in zip(axes, result.phase_names, result.maps):
    ax.imshow(image, cmap="viridis")
    ax.set_title(name, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()

# %%
# How close to the truth
# ----------------------
# The sample was simulated (``espm simulate sample_data/sample.hspy --seed 0``); its truth
# file holds the true W, maps and compositions. Each true phase is matched with a fitted
# one.
truth = read_result(SAMPLE / "sample_truth.h5")
for match in compare_to_truth(result, truth):
    print(
        f"true phase {match.true + 1} -> fitted {match.fitted + 1}: spectral angle "
        f"{match.spectral_angle_deg:.2f} deg, map correlation {match.map_correlation:.3f}, "
        f"at.% error {match.atomic_percent_error:.2f}"
    )
