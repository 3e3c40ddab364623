"""
A parameter sweep: the Laplacian weight at low dose
===================================================

At a few counts per pixel the maps are noisy; the Laplacian term
``(lambda_L / 2) tr(H Δ Hᵀ)`` smooths them over the pixel grid. Here a spectrum image is
simulated at 15 counts per pixel (so the truth is known) and decomposed for several
``lambda_L``. With ``normalize=True`` the counts are scaled to k per pixel before the fit,
so the weights mean the same at any dose (the ESpM paper's scale: ``lambda_L`` about 1).
The same sweep from the command line is a ``sweep:`` block of ``espm batch``.
"""

# %%
# Simulate a low-dose image with known truth
# ------------------------------------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import espm_cli
from espm_cli.report import compare_to_truth
from espm_cli.simulate import SimulationSettings, simulate, write_simulation

simulation = simulate(SimulationSettings(dose=15, size=(48, 48), shapes=("particles", "layer"), seed=1))
path, _ = write_simulation(simulation, Path(tempfile.mkdtemp()) / "low_dose.hspy")
s = espm_cli.load(path)

# %%
# Decompose for each weight and score against the truth
# -----------------------------------------------------
weights = [0.0, 0.3, 1.0, 3.0, 10.0, 100.0]
scores, maps = [], {}
for lambda_L in weights:
    s.decompose_phases(3, lambda_L=lambda_L, normalize=True, random_state=0)
    result = s.phase_results.result
    matches = sorted(compare_to_truth(result, simulation.truth), key=lambda m: m.true)
    scores.append([m.map_correlation for m in matches])
    maps[lambda_L] = result.maps[matches[1].fitted]  # the fitted map of the particles
    print(
        f"lambda_L={lambda_L:6.1f}: map correlation with the truth "
        + ", ".join(f"{m.map_correlation:.3f}" for m in matches)
        + f"; at.% error {np.mean([m.atomic_percent_error for m in matches]):.2f}"
    )

fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(np.maximum(weights, 0.1), scores, marker="o")
ax.set_xlabel("lambda_L (0 drawn at 0.1)")
ax.set_ylabel("map correlation")
ax.legend([phase.name for phase in simulation.settings.phases], fontsize=8)
fig.tight_layout()

# %%
# The particle map: too little, about right, too much smoothing
# -------------------------------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, lambda_L in zip(axes, (0.0, 1.0, 100.0)):
    ax.imshow(maps[lambda_L], cmap="viridis")
    ax.set_title(f"lambda_L = {lambda_L:g}")
    ax.set_axis_off()
fig.tight_layout()
