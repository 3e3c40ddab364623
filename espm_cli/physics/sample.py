"""The sample: thickness, density, tilt, composition, and its thin-film self-absorption."""

import math
from dataclasses import dataclass

import numpy as np

from .attenuation import mass_attenuation_mixture
from .errors import PhysicsInputError
from .xray_lines import atomic_number, atomic_weight

__all__ = [
    "Sample",
    "take_off_angle_deg",
    "thin_film_absorption",
    "bulk_absorption",
    "atomic_to_mass_fractions",
]


@dataclass(frozen=True)
class Sample:
    """The specimen.

    Parameters
    ----------
    thickness_nm : float or None
        Film thickness, nm. None: no self-absorption.
    density_g_cm3 : float or None
        Density, g/cm^3; required when ``thickness_nm`` is given.
    tilt_deg : float
        Stage tilt (alpha), degrees.
    composition : dict or None
        ``{symbol: atomic fraction}`` used for the attenuation coefficient (normalised to 1).
        None: the model's non-ignored elements in equal atomic fractions.
    bulk : bool
        A thick (bulk, SEM) specimen: self-absorption from the simplified
        Philibert-Duncumb-Heinrich model (:func:`bulk_absorption`) instead of the thin
        film; ``thickness_nm`` and ``density_g_cm3`` must then be None.
    """

    thickness_nm: float | None = None
    density_g_cm3: float | None = None
    tilt_deg: float = 0.0
    composition: dict[str, float] | None = None
    bulk: bool = False

    def __post_init__(self):
        for name in ("thickness_nm", "density_g_cm3"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value >= 0):
                raise PhysicsInputError(f"{name}={value!r} is not allowed; it must be None or a number >= 0.")
        if self.thickness_nm and self.density_g_cm3 is None:
            raise PhysicsInputError(
                f"density_g_cm3=None is not allowed with thickness_nm={self.thickness_nm!r}; "
                "give the density (g/cm^3) or leave the thickness out."
            )
        if not isinstance(self.bulk, (bool, np.bool_)):
            raise PhysicsInputError(f"bulk={self.bulk!r} is not allowed; it must be True or False.")
        if self.bulk and (self.thickness_nm is not None or self.density_g_cm3 is not None):
            raise PhysicsInputError(
                f"thickness_nm={self.thickness_nm!r} is not allowed with bulk=True; a bulk "
                "sample has no thickness (leave thickness_nm and density_g_cm3 as None)."
            )
        if not (_is_number(self.tilt_deg) and -90.0 < self.tilt_deg < 90.0):
            raise PhysicsInputError(
                f"tilt_deg={self.tilt_deg!r} is not allowed; it must be a number in (-90, 90)."
            )
        if self.composition is not None:
            object.__setattr__(self, "composition", normalise_composition(self.composition))

    @property
    def mass_thickness_g_cm2(self):
        """Density x thickness in g/cm^2, or 0 when absorption is off."""
        if not self.thickness_nm or not self.density_g_cm3:
            return 0.0
        return self.density_g_cm3 * self.thickness_nm * 1e-7


def _is_number(value):
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def normalise_composition(composition):
    """Check ``{symbol: atomic fraction}`` and scale it to sum 1."""
    if not isinstance(composition, dict) or not composition:
        raise PhysicsInputError(
            f"composition={composition!r} is not allowed; it must be a non-empty dict "
            "{element symbol: atomic fraction}."
        )
    for symbol, fraction in composition.items():
        atomic_number(symbol)
        if not (_is_number(fraction) and fraction >= 0):
            raise PhysicsInputError(
                f"composition[{symbol!r}]={fraction!r} is not allowed; it must be a number >= 0."
            )
    total = float(sum(composition.values()))
    if total <= 0:
        raise PhysicsInputError(
            f"composition={composition!r} is not allowed; its fractions must not all be 0."
        )
    return {symbol.strip(): float(fraction) / total for symbol, fraction in composition.items()}


def atomic_to_mass_fractions(atomic_fractions):
    """``{symbol: atomic fraction}`` -> ``{symbol: mass fraction}`` via atomic weights."""
    masses = {symbol: fraction * atomic_weight(symbol) for symbol, fraction in atomic_fractions.items()}
    total = sum(masses.values())
    return {symbol: mass / total for symbol, mass in masses.items()}


def take_off_angle_deg(elevation_deg, tilt_deg=0.0, azimuth_deg=0.0):
    """X-ray take-off angle above the tilted sample surface, degrees.

    The sample normal, tilted by ``tilt_deg`` about the tilt axis, is dotted with the
    detector direction (``elevation_deg`` above the untilted surface, ``azimuth_deg`` from
    the direction perpendicular to the tilt axis): sin(TOA) = sin(e) cos(t) + cos(e) cos(a)
    sin(t). With azimuth 0 this is elevation + tilt.
    """
    e, t, a = (math.radians(v) for v in (elevation_deg, tilt_deg, azimuth_deg))
    sine = math.sin(e) * math.cos(t) + math.cos(e) * math.cos(a) * math.sin(t)
    return math.degrees(math.asin(max(-1.0, min(1.0, sine))))


def thin_film_absorption(energy_keV, atomic_fractions, mass_thickness_g_cm2, take_off_deg):
    """Self-absorption factor (1 - exp(-x)) / x, x = chi rho t, chi = (mu/rho) / sin(TOA).

    Parameters
    ----------
    energy_keV : array_like
    atomic_fractions : dict
        ``{symbol: atomic fraction}`` summing to 1.
    mass_thickness_g_cm2 : float
        0 gives 1 everywhere.
    take_off_deg : float
        Must be > 0 when the mass thickness is > 0.

    Returns
    -------
    ndarray
        In (0, 1], same shape as ``energy_keV``.
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    if mass_thickness_g_cm2 <= 0:
        return np.ones_like(energy)
    if take_off_deg <= 0:
        raise PhysicsInputError(
            f"take-off angle {take_off_deg:.3g} deg is not allowed for absorption; the "
            "detector elevation and stage tilt must leave it > 0."
        )
    mu_rho = mass_attenuation_mixture(atomic_to_mass_fractions(atomic_fractions), energy)
    x = mu_rho * mass_thickness_g_cm2 / math.sin(math.radians(take_off_deg))
    small = x < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - 0.5 * x, -np.expm1(-safe) / safe)


def bulk_absorption(energy_keV, edge_keV, atomic_fractions, beam_energy_keV, take_off_deg):
    """Absorption factor f(chi) of a bulk specimen (simplified Philibert-Duncumb-Heinrich).

    1 / f = (1 + chi / s) (1 + h / (1 + h) chi / s), with chi = (mu/rho) / sin(TOA) in
    cm^2/g, Lenard coefficient s = 4.5e5 / (E0^1.65 - Ec^1.65) (keV) and h = 1.2 A / Z^2
    (mass-weighted mean A and Z). Ec is the ionization edge of the line; for the continuum
    at photon energy E, Ec = E (the least electron energy that can emit it).

    Parameters
    ----------
    energy_keV, edge_keV : array_like
        Photon energies and their critical energies (same shape).
    atomic_fractions : dict
    beam_energy_keV : float
    take_off_deg : float
        Must be > 0.

    Returns
    -------
    ndarray
        In (0, 1], same shape as ``energy_keV``.
    """
    if take_off_deg <= 0:
        raise PhysicsInputError(
            f"take-off angle {take_off_deg:.3g} deg is not allowed for absorption; the "
            "detector elevation and stage tilt must leave it > 0."
        )
    energy = np.asarray(energy_keV, dtype=np.float64)
    edge = np.minimum(np.asarray(edge_keV, dtype=np.float64), 0.999 * beam_energy_keV)
    mass_fractions = atomic_to_mass_fractions(atomic_fractions)
    mean_a = sum(w * atomic_weight(s) for s, w in mass_fractions.items())
    mean_z = sum(w * atomic_number(s) for s, w in mass_fractions.items())
    h = 1.2 * mean_a / mean_z**2
    lenard = 4.5e5 / (beam_energy_keV**1.65 - np.maximum(edge, 0.0) ** 1.65)
    chi = mass_attenuation_mixture(mass_fractions, energy) / math.sin(math.radians(take_off_deg))
    ratio = chi / lenard
    return 1.0 / ((1.0 + ratio) * (1.0 + h / (1.0 + h) * ratio))
