"""The X-ray detector: resolution (line width), geometry and efficiency."""

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import erf

from .attenuation import MIN_ATTENUATION_ENERGY_KEV, mass_attenuation_compound
from .errors import PhysicsInputError

__all__ = ["Detector", "MNKA_ENERGY_EV", "line_fwhm_keV", "gaussian_channel_areas"]

MNKA_ENERGY_EV = 5898.7
# Fano-noise slope of FWHM^2 in eV (FWHM(E)^2 = FWHM_MnKa^2 + 2.5 eV (E - 5898.7 eV)).
FANO_SLOPE_EV = 2.5
SILICON_DENSITY_G_CM3 = 2.33
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class Detector:
    """An energy-dispersive X-ray detector.

    The default is a thin polymer-window silicon drift detector: 0.3 um polyimide window
    with a 30 nm Al light shield, 30 nm Si dead layer, 450 um Si crystal.

    Parameters
    ----------
    mnka_fwhm_eV : float
        Resolution (FWHM) at Mn Ka, eV.
    elevation_deg : float
        Detector elevation above the untilted sample plane, degrees.
    azimuth_deg : float
        Detector azimuth, degrees; 0 puts the detector perpendicular to the tilt axis, on
        the side a positive tilt turns the sample towards.
    efficiency_file : str or Path or None
        Two-column text file (energy keV, efficiency 0..1), linearly interpolated and held
        constant beyond its ends; replaces the layered model when given.
    window_layers : tuple of (str, float, float)
        Window layers as (chemical formula, density g/cm^3, thickness um); ``()`` for a
        windowless detector.
    dead_layer_um : float
        Silicon dead layer thickness, um.
    crystal_thickness_um : float
        Silicon sensor thickness, um (photons passing through are lost).
    fwhm_floor_eV : float
        Smallest line width used: the linear FWHM^2 model goes below zero at low energy
        for very good detectors; widths are clamped here.
    """

    mnka_fwhm_eV: float = 130.0
    elevation_deg: float = 35.0
    azimuth_deg: float = 0.0
    efficiency_file: object = None
    window_layers: tuple = (("C22H10N2O5", 1.42, 0.3), ("Al", 2.70, 0.03))
    dead_layer_um: float = 0.03
    crystal_thickness_um: float = 450.0
    fwhm_floor_eV: float = 30.0

    def __post_init__(self):
        _check_number("mnka_fwhm_eV", self.mnka_fwhm_eV, low=1.0, high=1000.0)
        _check_number("elevation_deg", self.elevation_deg, low=-90.0, high=90.0)
        _check_number("azimuth_deg", self.azimuth_deg, low=-360.0, high=360.0)
        _check_number("dead_layer_um", self.dead_layer_um, low=0.0, high=1e3)
        _check_number("crystal_thickness_um", self.crystal_thickness_um, low=0.0, high=1e5, strict_low=True)
        _check_number("fwhm_floor_eV", self.fwhm_floor_eV, low=0.0, high=1000.0, strict_low=True)
        layers = tuple(tuple(layer) for layer in self.window_layers)
        for layer in layers:
            if len(layer) != 3 or not isinstance(layer[0], str):
                raise PhysicsInputError(
                    f"window_layers entry {layer!r} is not allowed; each layer must be "
                    "(formula, density g/cm^3, thickness um)."
                )
            _check_number("window layer density", layer[1], low=0.0, high=100.0, strict_low=True)
            _check_number("window layer thickness", layer[2], low=0.0, high=1e4)
        object.__setattr__(self, "window_layers", layers)
        if self.efficiency_file is not None and not Path(self.efficiency_file).is_file():
            raise PhysicsInputError(
                f"efficiency_file={str(self.efficiency_file)!r} is not allowed; "
                "it must name an existing two-column text file."
            )

    def fwhm_keV(self, energy_keV):
        """Line FWHM (keV) at ``energy_keV``; see :func:`line_fwhm_keV`."""
        return line_fwhm_keV(energy_keV, self.mnka_fwhm_eV, self.fwhm_floor_eV)

    def efficiency(self, energy_keV):
        """Fraction of photons of energy ``energy_keV`` that the detector records.

        Parameters
        ----------
        energy_keV : array_like

        Returns
        -------
        ndarray
            Same shape, in [0, 1]; 0 below 0.1 keV (no attenuation data) and at E <= 0.
        """
        energy = np.asarray(energy_keV, dtype=np.float64)
        if self.efficiency_file is not None:
            table = _read_efficiency_file(str(self.efficiency_file))
            values = np.interp(energy, table[:, 0], table[:, 1])
        else:
            values = _layered_efficiency(
                energy, self.window_layers, self.dead_layer_um, self.crystal_thickness_um
            )
        return np.where(energy >= MIN_ATTENUATION_ENERGY_KEV, values, 0.0)


def _check_number(name, value, *, low, high, strict_low=False):
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    if ok:
        ok = (value > low if strict_low else value >= low) and value <= high
    if not ok:
        bound = ">" if strict_low else ">="
        raise PhysicsInputError(
            f"{name}={value!r} is not allowed; it must be a number {bound} {low} and <= {high}."
        )


def line_fwhm_keV(energy_keV, mnka_fwhm_eV, fwhm_floor_eV=30.0):
    """FWHM (keV) of a line: FWHM(E)^2 = FWHM_MnKa^2 + 2.5 eV (E - 5898.7 eV), all in eV.

    Clamped below at ``fwhm_floor_eV``.
    """
    energy_eV = 1000.0 * np.asarray(energy_keV, dtype=np.float64)
    squared = mnka_fwhm_eV**2 + FANO_SLOPE_EV * (energy_eV - MNKA_ENERGY_EV)
    return np.sqrt(np.maximum(squared, fwhm_floor_eV**2)) / 1000.0


def gaussian_channel_areas(channel_edges_keV, centre_keV, fwhm_keV):
    """Unit-area Gaussian integrated over each channel (erf differences).

    Parameters
    ----------
    channel_edges_keV : ndarray, shape (n + 1,)
    centre_keV, fwhm_keV : float

    Returns
    -------
    ndarray, shape (n,)
        Fraction of the line's area in each channel; sums to 1 for a line well inside.
    """
    sigma = fwhm_keV * _FWHM_TO_SIGMA
    cumulative = 0.5 * erf((channel_edges_keV - centre_keV) / (math.sqrt(2.0) * sigma))
    return np.diff(cumulative)


@lru_cache(maxsize=16)
def _read_efficiency_file(path):
    try:
        table = np.loadtxt(path, comments="#", delimiter=None, ndmin=2)
    except ValueError:
        table = np.loadtxt(path, comments="#", delimiter=",", ndmin=2)
    if (
        table.shape[1] != 2
        or table.shape[0] < 2
        or not np.all(np.isfinite(table))
        or np.any(np.diff(table[:, 0]) <= 0)
        or np.any(table[:, 1] < 0)
    ):
        raise PhysicsInputError(
            f"efficiency_file={path!r} is not allowed; it must hold two columns (energy keV "
            "increasing, efficiency >= 0) with at least two rows."
        )
    table.setflags(write=False)
    return table


def _layered_efficiency(energy, window_layers, dead_layer_um, crystal_thickness_um):
    transmission = np.ones_like(energy)
    for formula, density, thickness_um in window_layers:
        mu = mass_attenuation_compound(formula, energy)
        transmission *= np.exp(-mu * density * thickness_um * 1e-4)
    mu_si = mass_attenuation_compound("Si", energy)
    transmission *= np.exp(-mu_si * SILICON_DENSITY_G_CM3 * dead_layer_um * 1e-4)
    mu_si_photo = mass_attenuation_compound("Si", energy, photo_only=True)
    absorbed = -np.expm1(-mu_si_photo * SILICON_DENSITY_G_CM3 * crystal_thickness_um * 1e-4)
    return transmission * absorbed
