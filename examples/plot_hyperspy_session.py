"""
A hyperspy session
==================

Installing espm_cli registers the hyperspy signal types ``EDS_espm_cli`` (TEM) and
``EDS_SEM_espm_cli`` (SEM), built on exspy's EDS spectra. :func:`espm_cli.load` opens
any file hyperspy reads as one of them; ``decompose_phases`` then runs the same workflow
as ``espm decompose`` (the same model, fit window and defaults) through hyperspy's own
``decomposition``.
"""

# %%
# Load, build G from the metadata, decompose
# ------------------------------------------
from pathlib import Path

import espm_cli
from espm_cli.solver import SmoothNMF

SAMPLE = Path(espm_cli.__file__).resolve().parents[1] / "sample_data" / "sample.hspy"
s = espm_cli.load(SAMPLE)
print(s)
model = s.build_G()  # elements, beam energy and detector from the metadata
print(model.labels)

s.decompose_phases(3, random_state=0)
print(s.composition_table())

# %%
# The maps beside their spectra
# -----------------------------
fig = s.plot_phases()

# %%
# hyperspy's own results work as usual
# ------------------------------------
maps = s.get_decomposition_loadings()
spectra = s.get_decomposition_factors()
print(maps, spectra)
print("W (element and continuum content of each phase):")
print(s.phase_results.W.round(2))

# %%
# The estimator alone, as ``algorithm=``
# --------------------------------------
# On the espm_cli signal types :class:`~espm_cli.solver.SmoothNMF` needs no flags, integer
# counts included. ``shape_2d`` is the pixel grid (rows, columns) the Laplacian needs.
nx, ny = s.axes_manager.navigation_shape
t = s.deepcopy()
t.decomposition(algorithm=SmoothNMF(3, G=model, shape_2d=(ny, nx), lambda_L=1.0, simplex="H", random_state=0))
estimator = t.learning_results.decomposition_algorithm
print(f"{estimator.n_iter_} iterations, final objective {estimator.losses_[-1, -1]:.6g}")
