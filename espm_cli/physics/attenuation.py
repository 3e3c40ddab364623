"""Mass attenuation coefficients (cm^2/g) from xraylib, vectorised over energy."""

from functools import lru_cache

import numpy as np
import xraylib

from .errors import PhysicsInputError

__all__ = ["MIN_ATTENUATION_ENERGY_KEV", "mass_attenuation_compound", "mass_attenuation_mixture"]

# xraylib's attenuation tables start at 0.1 keV and stop at 1000 keV.
MIN_ATTENUATION_ENERGY_KEV = 0.1
MAX_ATTENUATION_ENERGY_KEV = 1000.0


def _clamped(energy_keV):
    return np.clip(
        np.asarray(energy_keV, dtype=np.float64), MIN_ATTENUATION_ENERGY_KEV, MAX_ATTENUATION_ENERGY_KEV
    )


@lru_cache(maxsize=512)
def _compound_on_grid(formula, energies, photo_only):
    function = xraylib.CS_Photo_CP if photo_only else xraylib.CS_Total_CP
    try:
        values = np.array([function(formula, energy) for energy in energies])
    except ValueError as error:
        raise PhysicsInputError(
            f"formula={formula!r} is not allowed; it must be a chemical formula such as 'Si' or 'C22H10N2O5'."
        ) from error
    values.setflags(write=False)
    return values


def mass_attenuation_compound(formula, energy_keV, *, photo_only=False):
    """Mass attenuation (or photo-absorption) coefficient of a compound, cm^2/g.

    Energies outside xraylib's range (0.1 to 1000 keV) are clamped to it.
    """
    energy = _clamped(energy_keV)
    values = _compound_on_grid(formula, tuple(energy.ravel().tolist()), photo_only)
    return values.reshape(energy.shape)


def mass_attenuation_mixture(mass_fractions, energy_keV):
    """Mass attenuation coefficient (cm^2/g) of a mixture given as ``{symbol: mass fraction}``."""
    energy = _clamped(energy_keV)
    total = np.zeros_like(energy)
    for symbol, fraction in mass_fractions.items():
        if fraction > 0:
            total += fraction * mass_attenuation_compound(symbol, energy)
    return total
