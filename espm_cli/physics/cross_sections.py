"""Electron-impact ionization cross-sections (Bote & Salvat 2009) with Coster-Kronig transfer.

D. Bote, F. Salvat, A. Jablonski, C. J. Powell, Atomic Data and Nuclear Data Tables 95
(2009) 871-909: analytical formulas for the K, L1-L3 and M1-M5 subshells, Z = 1-99.
The parameter table ships as ``data/bote_salvat_2009.csv``.
"""

import math
from functools import lru_cache
from importlib import resources

import numpy as np
import xraylib

__all__ = [
    "BOHR_RADIUS_CM",
    "ELECTRON_REST_ENERGY_EV",
    "SUBSHELLS",
    "bote_salvat_table",
    "ionization_cross_section",
    "effective_cross_sections",
]

BOHR_RADIUS_CM = 5.291772108e-9
ELECTRON_REST_ENERGY_EV = 510998.918
SUBSHELLS = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")
# Exponent on (1 - beta^2) in the high-energy branch: +1/4 is the published formula;
# -1/4 reproduces the tables of espm 1.1.3 (a sign slip) and exists only for comparison.
PUBLISHED_EXPONENT = 0.25
ESPM_1_1_3_EXPONENT = -0.25

_LOW_COLUMNS = ("a1", "a2", "a3", "a4", "a5")
_HIGH_COLUMNS = ("b", "Anlj", "g1", "g2", "g3", "g4")
_OVERVOLTAGE_SWITCH = 16.0


@lru_cache(maxsize=1)
def bote_salvat_table():
    """Parameter table: ``(Z, shell) -> {edge_eV, a1..a5, b, Anlj, g1..g4}`` (floats).

    Returns
    -------
    dict
        Read once from the package data file and cached.
    """
    data = resources.files(__package__).joinpath("data")
    text = data.joinpath("bote_salvat_2009.csv").read_text()
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    table = {}
    for line in lines[1:]:
        fields = line.split(",")
        record = {name: float(value) for name, value in zip(header[2:], fields[2:])}
        table[(int(fields[0]), fields[1].strip())] = record
    return table


def _sigma_low(overvoltage, params):
    u = overvoltage
    bracket = (
        params["a1"]
        + params["a2"] * u
        + params["a3"] / (1 + u)
        + params["a4"] / (1 + u) ** 3
        + params["a5"] / (1 + u) ** 5
    )
    return 4 * math.pi * BOHR_RADIUS_CM**2 * (u - 1) / u**2 * bracket**2


def _sigma_high(overvoltage, energy_eV, params, exponent):
    mc2 = ELECTRON_REST_ENERGY_EV
    x = math.sqrt(energy_eV * (energy_eV + 2 * mc2)) / mc2
    beta2 = energy_eV * (energy_eV + 2 * mc2) / (energy_eV + mc2) ** 2
    braces = (
        (math.log(x**2) - beta2) * (1 + params["g1"] / x)
        + params["g2"]
        + params["g3"] * (1 - beta2) ** exponent
        + params["g4"] / x
    )
    return (
        4
        * math.pi
        * BOHR_RADIUS_CM**2
        * overvoltage
        / (overvoltage + params["b"])
        * params["Anlj"]
        / beta2
        * braces
    )


def ionization_cross_section(atomic_number, shell, energy_eV, *, branch=None, exponent=PUBLISHED_EXPONENT):
    """Ionization cross-section of one subshell by an electron of kinetic energy ``energy_eV``.

    Parameters
    ----------
    atomic_number : int
        Z, 1 to 99.
    shell : str
        One of ``SUBSHELLS`` ("K", "L1".."L3", "M1".."M5").
    energy_eV : float
        Electron kinetic energy, eV.
    branch : {None, "low", "high"}
        Force one branch of the formula (for tests); None picks by overvoltage (U <= 16: low).
    exponent : float
        Exponent on (1 - beta^2); keep the published +1/4.

    Returns
    -------
    float
        Cross-section in cm^2; 0 at or below the edge or for a subshell not in the table.
    """
    params = bote_salvat_table().get((int(atomic_number), shell))
    if params is None:
        return 0.0
    overvoltage = energy_eV / params["edge_eV"]
    if overvoltage <= 1.0 and branch is None:
        return 0.0
    use_low = overvoltage <= _OVERVOLTAGE_SWITCH if branch is None else branch == "low"
    if use_low:
        return _sigma_low(overvoltage, params)
    return _sigma_high(overvoltage, energy_eV, params, exponent)


def _coster_kronig(atomic_number, transition):
    try:
        return xraylib.CosKronTransProb(atomic_number, transition)
    except ValueError:
        return 0.0


_CK_TRANSITIONS = {
    ("L1", "L2"): xraylib.FL12_TRANS,
    ("L1", "L3"): xraylib.FL13_TRANS,
    ("L2", "L3"): xraylib.FL23_TRANS,
    ("M1", "M2"): xraylib.FM12_TRANS,
    ("M1", "M3"): xraylib.FM13_TRANS,
    ("M1", "M4"): xraylib.FM14_TRANS,
    ("M1", "M5"): xraylib.FM15_TRANS,
    ("M2", "M3"): xraylib.FM23_TRANS,
    ("M2", "M4"): xraylib.FM24_TRANS,
    ("M2", "M5"): xraylib.FM25_TRANS,
    ("M3", "M4"): xraylib.FM34_TRANS,
    ("M3", "M5"): xraylib.FM35_TRANS,
    ("M4", "M5"): xraylib.FM45_TRANS,
}


@lru_cache(maxsize=4096)
def effective_cross_sections(atomic_number, beam_energy_keV, exponent=PUBLISHED_EXPONENT):
    """Vacancy-creation cross-sections per subshell, including Coster-Kronig transfer.

    sigma_eff(Mi) = sigma(Mi) + sum_{j < i} f_ji * sigma_eff(Mj) (and the same for L), e.g.
    sigma_eff(L3) = sigma(L3) + f23 sigma(L2) + (f13 + f12 f23) sigma(L1).

    Parameters
    ----------
    atomic_number : int
    beam_energy_keV : float
    exponent : float
        See :func:`ionization_cross_section`.

    Returns
    -------
    dict
        ``shell -> sigma_eff`` in cm^2 for every shell in ``SUBSHELLS``.
    """
    energy_eV = 1000.0 * beam_energy_keV
    direct = {
        shell: ionization_cross_section(atomic_number, shell, energy_eV, exponent=exponent)
        for shell in SUBSHELLS
    }
    effective = {"K": direct["K"]}
    for family in ("L", "M"):
        shells = [shell for shell in SUBSHELLS if shell.startswith(family)]
        for i, shell in enumerate(shells):
            total = direct[shell]
            for lower in shells[:i]:
                total += _coster_kronig(atomic_number, _CK_TRANSITIONS[(lower, shell)]) * effective[lower]
            effective[shell] = total
    return effective


def cross_sections_at_switch(exponent=PUBLISHED_EXPONENT):
    """Both branches at U = 16 for every subshell of the table (for consistency checks).

    Returns
    -------
    keys : list of (int, str)
    low, high : ndarray
        Cross-sections (cm^2) from the low- and high-energy branch.
    """
    keys, low, high = [], [], []
    for (z, shell), params in bote_salvat_table().items():
        energy = _OVERVOLTAGE_SWITCH * params["edge_eV"]
        keys.append((z, shell))
        low.append(ionization_cross_section(z, shell, energy, branch="low"))
        high.append(ionization_cross_section(z, shell, energy, branch="high", exponent=exponent))
    return keys, np.array(low), np.array(high)
