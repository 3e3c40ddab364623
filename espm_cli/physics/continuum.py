"""Bremsstrahlung (continuum) shapes: Kramers' law and its first correction."""

import numpy as np

__all__ = ["CONTINUUM_LABELS", "continuum_shapes"]

CONTINUUM_LABELS = ("continuum_kramers", "continuum_correction")


def continuum_shapes(energy_keV, beam_energy_keV):
    """The two raw continuum shapes at ``energy_keV``.

    Kramers (E0 - E) / E and the correction (E0 - E)^2 / (E0 E); both are 0 at E <= 0 and
    at E >= E0.

    Returns
    -------
    ndarray, shape (n, 2)
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    inside = (energy > 0) & (energy < beam_energy_keV)
    safe = np.where(inside, energy, 1.0)
    kramers = np.where(inside, (beam_energy_keV - safe) / safe, 0.0)
    correction = np.where(inside, (beam_energy_keV - safe) ** 2 / (beam_energy_keV * safe), 0.0)
    return np.stack([kramers, correction], axis=1)
