"""Shared helpers for the hyperspy extension tests."""

from pathlib import Path

import numpy as np

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
REAL_FILES = (
    "30x30_instructively_packed_16bit_compressed.bcf",
    "88_ES-LP_G8_selection2_cropped2.hspy",
    "Hitachi_TM3030Plus.bcf",
    "View000_0000006.pts",
    "bcf_v2_50x50px.bcf",
    "test_TEM.bcf",
    "velox_Test_SI_16x16_215kx.emd",
)


def eds_signal(
    shape=(6, 8, 120), *, signal_type="EDS_TEM", seed=0, rate=0.5, elements=("Fe", "O"), beam_energy=200.0
):
    """A small EDS spectrum image of Poisson counts (uint16), eager."""
    import hyperspy.api as hs

    rng = np.random.default_rng(seed)
    data = rng.poisson(rate, size=shape).astype(np.uint16)
    signal = hs.signals.Signal1D(data)
    signal.set_signal_type(signal_type)
    energy = signal.axes_manager.signal_axes[0]
    energy.offset, energy.scale, energy.units, energy.name = 0.2, 0.08, "keV", "Energy"
    for axis in signal.axes_manager.navigation_axes:
        axis.scale, axis.units = 2.5, "nm"
    if elements:
        signal.metadata.set_item("Sample.elements", list(elements))
    microscope = "SEM" if "SEM" in signal_type else "TEM"
    signal.metadata.set_item(f"Acquisition_instrument.{microscope}.beam_energy", beam_energy)
    return signal
