"""
A real file: a Bruker SEM map
=============================

``bcf_v2_50x50px.bcf`` from ``../shared/realdata`` (a rosettasciio test file: 50 x 50
pixels, 2048 channels, about 380 counts per pixel, elements Ag, Al, C, Cu, O in the
metadata, 20 kV). This example is built only where that folder exists (``docs/conf.py``
leaves the ``plot_realdata_*`` examples out otherwise).
"""

# %%
# Open the spectrum image out of the .bcf
# ---------------------------------------
# A .bcf holds images besides the spectrum image; :func:`espm_cli.load` picks the spectrum
# image and gives it the espm_cli SEM signal type.
from pathlib import Path

import espm_cli

REALDATA = Path(espm_cli.__file__).resolve().parents[1] / ".." / "shared" / "realdata"
s = espm_cli.load(REALDATA / "bcf_v2_50x50px.bcf")
print(s)
print(s.metadata.Sample.elements)

# %%
# Decompose with the elements of the metadata
# -------------------------------------------
# Peaks of the data that the model does not explain come back as warnings naming the
# X-ray lines near them.
s.decompose_phases(3, lambda_L=1.0, normalize=True, random_state=0)
print(s.composition_table())
for peak in s.phase_results.result.residual_peaks:
    print(peak["message"])

# %%
fig = s.plot_phases()
