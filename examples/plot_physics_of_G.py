"""
The physics of G
================

G is not learned: :class:`espm_cli.physics.EDXModel` builds it from the energy axis, the
elements, the beam energy, the detector and the sample. Each element's column is the sum
of its X-ray lines (weighted by ionisation cross-section, fluorescence yield and radiative
rate, detector efficiency and absorption), each a Gaussian as wide as the detector
resolution at its energy; two columns model the bremsstrahlung. Because the columns are
scaled per atom, W's element rows count atoms and the compositions are a normalisation of
them (``docs/physics.md``).
"""

# %%
# A model over 0-20 keV, 10 eV channels, at 200 kV
# ------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from espm_cli.physics import Detector, EDXModel, EnergyAxis, Sample

axis = EnergyAxis(0.0, 0.01, 2000)  # offset keV, channel width keV, channels
model = EDXModel(axis, ["O", "Si", "Fe", "Pt"], 200.0)
print(model.labels)
print("G:", model.G.shape, "(channels x (elements + 2 continuum columns))")

fig, ax = plt.subplots(figsize=(8, 3.5))
for column, label in zip(model.G.T, model.labels):
    ax.plot(axis.energies, column, label=label, lw=1)
ax.set_xlabel("energy (keV)")
ax.set_ylabel("G (per atom)")
ax.set_yscale("log")
ax.set_ylim(1e-6, None)
ax.legend(ncol=3, fontsize=8)
fig.tight_layout()

# %%
# The lines of an element
# -----------------------
# The X-ray lines the model puts into a column, with their energies and weights.
for line in [line for line in model.lines if line.element == "Fe"][:6]:
    print(line)

# %%
# The detector resolution widens every line
# -----------------------------------------
# The line width follows the detector's FWHM at Mn Kα (130 eV by default), growing with
# the square root of energy.
fig, ax = plt.subplots(figsize=(8, 3))
window = (axis.energies > 5.5) & (axis.energies < 8.0)
for fwhm in (70.0, 130.0, 200.0):
    wide = EDXModel(axis, ["Fe"], 200.0, detector=Detector(mnka_fwhm_eV=fwhm))
    ax.plot(axis.energies[window], wide.G[window, 0], label=f"{fwhm:.0f} eV at Mn Kα")
ax.set_xlabel("energy (keV)")
ax.set_title("Fe K lines")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Self-absorption in a thick film
# -------------------------------
# A film of a given thickness and density absorbs the soft lines on their way to the
# detector: O Kα (0.52 keV) loses more than Fe Kα (6.4 keV).
thin = EDXModel(axis, ["O", "Fe"], 200.0)
thick = EDXModel(axis, ["O", "Fe"], 200.0, sample=Sample(thickness_nm=200.0, density_g_cm3=5.0))
for index, symbol in enumerate(thin.elements):
    ratio = thick.G[:, index].sum() / thin.G[:, index].sum()
    print(f"{symbol}: {100 * ratio:.1f} % of its thin-film intensity through 200 nm")

# %%
# From W to a composition
# -----------------------
# Amounts of atoms in W's element rows become atomic and weight percent.
W = np.zeros((len(model.labels), 1))
W[model.labels.index("Fe"), 0] = 1.0
W[model.labels.index("Pt"), 0] = 1.0
W[model.labels.index("continuum_kramers"), 0] = 0.5
composition = model.composition(W)
print(composition.elements, composition.atomic_percent.round(1), composition.weight_percent.round(1))
