"""Line energies, yields and production weights."""

import pytest
import xraydb
import xraylib

from espm_cli.physics.errors import UnknownElementError
from espm_cli.physics.xray_lines import atomic_number, element_lines, line_energy


def test_cu_ka1_energy():
    assert line_energy("Cu", "KL3") == pytest.approx(8.0478, abs=1e-4)
    cu = element_lines("Cu", 200.0, 0.0, 20.0)
    ka1 = [line for line in cu if line.name == "Ka1"]
    assert len(ka1) == 1 and ka1[0].energy_keV == pytest.approx(8.0478, abs=1e-4)


@pytest.mark.parametrize("z", range(3, 100))
def test_fluorescence_yields_in_unit_interval(z):
    for shell in (
        xraylib.K_SHELL,
        xraylib.L1_SHELL,
        xraylib.L2_SHELL,
        xraylib.L3_SHELL,
        xraylib.M1_SHELL,
        xraylib.M5_SHELL,
    ):
        try:
            value = xraylib.FluorYield(z, shell)
        except ValueError:
            continue
        assert 0.0 <= value <= 1.0


# (symbol, IUPAC line in xraylib, line name in xraydb)
MAIN_LINES = [
    ("C", "KL3", "Ka1"),
    ("O", "KL3", "Ka1"),
    ("Al", "KL3", "Ka1"),
    ("Si", "KL3", "Ka1"),
    ("Ca", "KL3", "Ka1"),
    ("Ti", "KL3", "Ka1"),
    ("Fe", "KL3", "Ka1"),
    ("Fe", "KM3", "Kb1"),
    ("Cu", "KL3", "Ka1"),
    ("Cu", "L3M5", "La1"),
    ("Ag", "L3M5", "La1"),
    ("Pd", "L3M5", "La1"),
    ("Pt", "L3M5", "La1"),
    ("Pt", "L2M4", "Lb1"),
    ("Hf", "L3M5", "La1"),
    ("U", "L3M5", "La1"),
]


@pytest.mark.parametrize("symbol, iupac, xraydb_name", MAIN_LINES)
def test_line_energies_agree_with_xraydb_within_5_eV(symbol, iupac, xraydb_name):
    reference_eV = xraydb.xray_lines(symbol)[xraydb_name].energy
    assert 1000.0 * line_energy(symbol, iupac) == pytest.approx(reference_eV, abs=5.0)


def test_weights_are_sigma_omega_rate():
    from espm_cli.physics.cross_sections import effective_cross_sections

    sigma = effective_cross_sections(26, 200.0)["K"]
    expected = sigma * xraylib.FluorYield(26, xraylib.K_SHELL) * xraylib.RadRate(26, xraylib.KL3_LINE) / 1e-22
    ka1 = [line for line in element_lines("Fe", 200.0, 0.0, 20.0) if line.iupac == "KL3"][0]
    assert ka1.weight == pytest.approx(expected, rel=1e-12)


def test_lines_respect_beam_energy_and_range():
    # Pt L3 edge is 11.56 keV: at 10 keV only M lines are excited.
    lines = element_lines("Pt", 10.0, 0.0, 20.0)
    assert lines and all(line.subshell.startswith("M") for line in lines)
    assert all(0.5 <= line.energy_keV < 3.0 for line in element_lines("Fe", 200.0, 0.5, 3.0))


def test_unknown_symbol_is_named():
    with pytest.raises(UnknownElementError, match="Xx"):
        atomic_number("Xx")


@pytest.mark.parametrize("symbol", ["Pt", "Au", "Hf", "U", "Pb"])
def test_m_alpha_agrees_with_xraydb_within_5_eV(symbol):
    # xraydb lumps M5-N6 and M5-N7 into one "Ma" line (its energy lies between them, near
    # the stronger one): it must fall within 5 eV of xraylib's two components' span.
    z = atomic_number(symbol)
    energies = [1000.0 * xraylib.LineEnergy(z, line) for line in (xraylib.M5N6_LINE, xraylib.M5N7_LINE)]
    reference = xraydb.xray_lines(symbol)["Ma"].energy
    assert min(energies) - 5.0 <= reference <= max(energies) + 5.0


def test_no_intra_shell_lines():
    for symbol in ("Ti", "Pt", "U"):
        for line in element_lines(symbol, 200.0, 0.0, 40.0):
            assert line.iupac[len(line.subshell)] != line.subshell[0]
