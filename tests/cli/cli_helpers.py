"""Small spectrum images for the CLI tests."""

import warnings

import numpy as np

from espm_cli.simulate import SimulationSettings, simulate, write_simulation

SMALL = dict(size=(16, 16), n_channels=512, energy_scale_keV=0.02, dose=150.0)


def write_small_simulation(path, seed=0, **changes):
    """A 16 x 16 x 512 simulated EDS_TEM image (.hspy) and its truth; returns both paths."""
    settings = SimulationSettings(seed=seed, **{**SMALL, **changes})
    return write_simulation(simulate(settings), path, overwrite=True)


def write_hspy(path, data, *, signal_dimension=1, elements=None, beam_energy=200.0):
    """A .hspy file of raw data (for single spectra, images, no metadata)."""
    import hyperspy.api as hs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if signal_dimension == 1:
            signal = hs.signals.Signal1D(np.asarray(data))
            signal.set_signal_type("EDS_TEM")
            axis = signal.axes_manager.signal_axes[0]
            axis.offset, axis.scale, axis.units = 0.0, 0.02, "keV"
            if beam_energy is not None:
                signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", beam_energy)
            if elements:
                signal.metadata.set_item("Sample.elements", list(elements))
        else:
            signal = hs.signals.Signal2D(np.asarray(data))
        signal.save(path, overwrite=True)
    return path
