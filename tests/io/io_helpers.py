import warnings

import numpy as np


def write_eds_hspy(
    path,
    shape=(6, 8, 50),
    *,
    nav_dims=2,
    elements=("Fe", "O"),
    beam_energy=200.0,
    seed=0,
    dtype=np.uint16,
    with_scale=True,
):
    """A small EDS_TEM spectrum image with Poisson counts, saved as .hspy."""
    import hyperspy.api as hs

    rng = np.random.default_rng(seed)
    data = rng.poisson(0.3, size=shape).astype(dtype)
    signal = hs.signals.Signal1D(data)
    signal.set_signal_type("EDS_TEM")
    energy = signal.axes_manager.signal_axes[0]
    energy.offset, energy.scale, energy.units, energy.name = 0.1, 0.02, "keV", "Energy"
    if with_scale:
        for axis in signal.axes_manager.navigation_axes:
            axis.scale, axis.units = 2.5, "nm"
    if elements:
        signal.metadata.set_item("Sample.elements", list(elements))
    if beam_energy is not None:
        signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", beam_energy)
    signal.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.elevation_angle", 22.0)
    signal.metadata.set_item("Acquisition_instrument.TEM.Stage.tilt_alpha", 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.save(path, overwrite=True)
    return path, data
