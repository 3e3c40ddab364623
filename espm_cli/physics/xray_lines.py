"""Characteristic X-ray lines and their production weights, from xraylib and Bote-Salvat.

Production weight of a line (initial subshell i) at beam energy E0:
``sigma_eff,i(E0) * omega_i * R_line`` with sigma_eff the Coster-Kronig-corrected
ionization cross-section, omega_i the fluorescence yield and R_line the radiative rate.
Weights are expressed in units of ``CROSS_SECTION_UNIT_CM2`` (1e-22 cm^2 = 100 barn), which
puts the strong lines of common elements at 0.01 to 10.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

import xraylib

from .cross_sections import PUBLISHED_EXPONENT, bote_salvat_table, effective_cross_sections
from .errors import UnknownElementError

__all__ = [
    "CROSS_SECTION_UNIT_CM2",
    "XRayLine",
    "atomic_number",
    "atomic_weight",
    "element_lines",
    "line_energy",
]

CROSS_SECTION_UNIT_CM2 = 1e-22
# Lines weaker than this fraction of the element's strongest line in range are dropped:
# they change G by far less than the data's noise and cost time.
RELATIVE_WEIGHT_CUTOFF = 1e-3
# Below this energy xraylib has no attenuation data; no line is modelled there.
MIN_LINE_ENERGY_KEV = 0.1

_SHELL_CONSTANTS = {
    "K": xraylib.K_SHELL,
    "L1": xraylib.L1_SHELL,
    "L2": xraylib.L2_SHELL,
    "L3": xraylib.L3_SHELL,
    "M1": xraylib.M1_SHELL,
    "M2": xraylib.M2_SHELL,
    "M3": xraylib.M3_SHELL,
    "M4": xraylib.M4_SHELL,
    "M5": xraylib.M5_SHELL,
}
_IUPAC_PATTERN = re.compile(r"^(K|L[1-3]|M[1-5])([K-Q][1-7]?)_LINE$")
_SIEGBAHN_NAMES = {
    "KL3": "Ka1",
    "KL2": "Ka2",
    "KM3": "Kb1",
    "KM2": "Kb3",
    "KN3": "Kb2",
    "KN2": "Kb2",
    "KM5": "Kb5",
    "KM4": "Kb5",
    "L3M5": "La1",
    "L3M4": "La2",
    "L2M4": "Lb1",
    "L3N5": "Lb2",
    "L3N4": "Lb15",
    "L1M3": "Lb3",
    "L1M2": "Lb4",
    "L3O4": "Lb5",
    "L3O5": "Lb5",
    "L3N1": "Lb6",
    "L2N4": "Lg1",
    "L1N2": "Lg2",
    "L1N3": "Lg3",
    "L2O4": "Lg6",
    "L2N1": "Lg5",
    "L3M1": "Ll",
    "L2M1": "Ln",
    "L2M3": "Lb17",
    "L1M4": "Lb10",
    "L1M5": "Lb9",
    "M5N7": "Ma",
    "M5N6": "Ma2",
    "M4N6": "Mb",
    "M3N5": "Mg",
    "M3N4": "Mg2",
    "M5N3": "Mz",
    "M4N2": "Mz2",
    "M2N4": "M2N4",
}


@dataclass(frozen=True)
class XRayLine:
    """One characteristic line of one element.

    Attributes
    ----------
    element : str
        Element symbol.
    name : str
        Siegbahn-style name ("Ka1", "La1", "Ma"), or the IUPAC name where none is common.
    iupac : str
        IUPAC transition name, e.g. "KL3".
    subshell : str
        Initial (ionized) subshell, e.g. "K", "L3".
    energy_keV : float
        Line energy, keV.
    weight : float
        Production weight sigma_eff * omega * R in units of ``CROSS_SECTION_UNIT_CM2``.
    edge_keV : float
        Ionization edge of the initial subshell, keV.
    """

    element: str
    name: str
    iupac: str
    subshell: str
    energy_keV: float
    weight: float
    edge_keV: float


def atomic_number(symbol):
    """Atomic number of an element symbol; :class:`UnknownElementError` if it is none."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise UnknownElementError(
            f"element={symbol!r} is not allowed; it must be a chemical element symbol such as 'Fe'."
        )
    return _atomic_number(symbol.strip())


@lru_cache(maxsize=256)
def _atomic_number(symbol):
    try:
        z = xraylib.SymbolToAtomicNumber(symbol)
    except ValueError:
        z = 0
    if not 1 <= z <= 99:
        raise UnknownElementError(
            f"element={symbol!r} is not a known chemical element symbol (H to Es, e.g. 'Fe')."
        )
    return z


@lru_cache(maxsize=256)
def atomic_weight(symbol):
    """Standard atomic weight, g/mol."""
    return xraylib.AtomicWeight(atomic_number(symbol))


@lru_cache(maxsize=1)
def _line_catalogue():
    """All (iupac name, subshell, xraylib line constant) for K, L1-L3 and M1-M5 lines."""
    catalogue = []
    for attribute in dir(xraylib):
        match = _IUPAC_PATTERN.match(attribute)
        # Intra-shell (Coster-Kronig) transitions such as L1L3 are sub-keV satellites that
        # EDX detectors do not resolve: left out.
        if match and match.group(2)[0] != match.group(1)[0]:
            catalogue.append((match.group(1) + match.group(2), match.group(1), getattr(xraylib, attribute)))
    return tuple(sorted(catalogue))


def line_energy(symbol, iupac):
    """Energy (keV) of a line given by its IUPAC name, e.g. ``line_energy("Cu", "KL3")``."""
    return xraylib.LineEnergy(atomic_number(symbol), getattr(xraylib, iupac + "_LINE"))


@lru_cache(maxsize=256)
def _radiative_lines(z):
    """(iupac, subshell, energy keV, omega * R) of every line xraylib knows for Z."""
    lines = []
    for iupac, subshell, constant in _line_catalogue():
        try:
            energy = xraylib.LineEnergy(z, constant)
            rate = xraylib.RadRate(z, constant)
            yield_ = xraylib.FluorYield(z, _SHELL_CONSTANTS[subshell])
        except ValueError:
            continue
        if energy > 0 and rate > 0 and yield_ > 0:
            lines.append((iupac, subshell, energy, yield_ * rate))
    return tuple(lines)


@lru_cache(maxsize=1024)
def element_lines(symbol, beam_energy_keV, low_keV, high_keV, exponent=PUBLISHED_EXPONENT):
    """Lines of one element inside ``[low_keV, high_keV)`` excited at ``beam_energy_keV``.

    Lines need a line energy inside the range (and >= ``MIN_LINE_ENERGY_KEV``) and a
    nonzero ionization cross-section of their initial subshell (edge below the beam energy).
    Lines weaker than ``RELATIVE_WEIGHT_CUTOFF`` times the strongest one kept are dropped.

    Returns
    -------
    tuple of XRayLine
        Sorted by energy; empty when no line qualifies.
    """
    z = atomic_number(symbol)
    sigma = effective_cross_sections(z, float(beam_energy_keV), exponent)
    low = max(low_keV, MIN_LINE_ENERGY_KEV)
    candidates = []
    for iupac, subshell, energy, yield_rate in _radiative_lines(z):
        if not (low <= energy < high_keV) or energy >= beam_energy_keV:
            continue
        weight = sigma[subshell] * yield_rate / CROSS_SECTION_UNIT_CM2
        if weight > 0:
            edge = bote_salvat_table()[(z, subshell)]["edge_eV"] / 1000.0
            candidates.append(
                XRayLine(symbol, _SIEGBAHN_NAMES.get(iupac, iupac), iupac, subshell, energy, weight, edge)
            )
    if not candidates:
        return ()
    strongest = max(line.weight for line in candidates)
    kept = [line for line in candidates if line.weight >= RELATIVE_WEIGHT_CUTOFF * strongest]
    return tuple(sorted(kept, key=lambda line: line.energy_keV))
