"""Energy axis, take-off angle, thin-film absorption, continuum."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from espm_cli.physics import EnergyAxis, Sample
from espm_cli.physics.continuum import continuum_shapes
from espm_cli.physics.errors import EnergyAxisError
from espm_cli.physics.sample import take_off_angle_deg, thin_film_absorption


def test_axis_energies_and_edges():
    axis = EnergyAxis(-0.47, 0.01, 4096)
    assert axis.energies[0] == -0.47 and axis.energies[-1] == pytest.approx(-0.47 + 40.95)
    assert axis.edges[0] == pytest.approx(-0.475) and len(axis.edges) == 4097
    assert axis.channel_of(8.0478) == int(round((8.0478 + 0.47) / 0.01))


def test_axis_from_hyperspy_like_object_in_eV():
    axis = EnergyAxis.from_axis(SimpleNamespace(offset=-470.0, scale=10.0, size=2048, units="eV"))
    assert axis == EnergyAxis(-0.47, 0.01, 2048)
    assert EnergyAxis.from_axis(SimpleNamespace(offset=0.1, scale=0.02, size=5)).size == 5


@pytest.mark.parametrize(
    "arguments",
    [(0.0, 0.0, 10), (0.0, -0.01, 10), (0.0, 0.01, 0), (float("nan"), 0.01, 10), (0.0, 0.01, 2.5)],
)
def test_bad_axis(arguments):
    with pytest.raises(EnergyAxisError):
        EnergyAxis(*arguments)
    with pytest.raises(ValueError):
        EnergyAxis.from_axis(object())


def test_take_off_angle():
    assert take_off_angle_deg(35.0) == pytest.approx(35.0)
    assert take_off_angle_deg(22.0, tilt_deg=10.0) == pytest.approx(32.0)
    # Tilting about an axis pointing at the detector does not change the angle to first order.
    assert take_off_angle_deg(35.0, 10.0, 90.0) == pytest.approx(
        math.degrees(math.asin(math.sin(math.radians(35)) * math.cos(math.radians(10))))
    )


def test_thin_film_absorption_limits():
    energies = np.array([0.5, 1.0, 8.0])
    assert np.all(thin_film_absorption(energies, {"Fe": 1.0}, 0.0, 35.0) == 1.0)
    thin = thin_film_absorption(energies, {"Fe": 1.0}, 1e-6, 35.0)
    thick = thin_film_absorption(energies, {"Fe": 1.0}, 1e-4, 35.0)
    assert np.all(thick < thin) and np.all(thin <= 1.0) and np.all(thick > 0)
    assert thick[0] < thick[2]  # soft X-rays absorbed more


def test_thin_film_absorption_formula():
    import xraylib

    mass_thickness = 7.87 * 100e-7
    chi = xraylib.CS_Total(26, 1.0) / math.sin(math.radians(30.0))
    x = chi * mass_thickness
    value = thin_film_absorption(np.array([1.0]), {"Fe": 1.0}, mass_thickness, 30.0)[0]
    assert value == pytest.approx((1 - math.exp(-x)) / x, rel=1e-10)


def test_sample_validation():
    assert Sample(100.0, 7.87).mass_thickness_g_cm2 == pytest.approx(7.87e-5)
    assert Sample().mass_thickness_g_cm2 == 0.0
    with pytest.raises(ValueError, match="density_g_cm3"):
        Sample(thickness_nm=50.0)
    with pytest.raises(ValueError, match="tilt_deg"):
        Sample(tilt_deg=95.0)
    with pytest.raises(ValueError, match="Qq"):
        Sample(composition={"Qq": 1.0})
    assert Sample(composition={"Fe": 2, "O": 2}).composition == {"Fe": 0.5, "O": 0.5}


def test_continuum_shapes():
    energies = np.array([-0.1, 0.0, 1.0, 10.0, 20.0, 25.0])
    shapes = continuum_shapes(energies, 20.0)
    assert np.all(shapes[[0, 1, 4, 5]] == 0)
    assert shapes[2, 0] == pytest.approx(19.0)
    assert shapes[3, 1] == pytest.approx(100.0 / 200.0)


def test_bulk_absorption_formula_and_limits():
    import xraylib

    from espm_cli.physics.sample import bulk_absorption

    energies = np.array([0.93, 8.04])
    edges = np.array([0.933, 8.979])
    factor = bulk_absorption(energies, edges, {"Cu": 1.0}, 15.0, 35.0)
    assert np.all((factor > 0) & (factor < 1)) and factor[0] < factor[1]
    chi = xraylib.CS_Total(29, 8.04) / math.sin(math.radians(35.0))
    sigma = 4.5e5 / (15.0**1.65 - 8.979**1.65)
    h = 1.2 * xraylib.AtomicWeight(29) / 29**2
    expected = 1 / ((1 + chi / sigma) * (1 + h / (1 + h) * chi / sigma))
    assert factor[1] == pytest.approx(expected, rel=1e-10)
    # Higher beam energy: deeper generation, more absorption.
    assert bulk_absorption(energies, edges, {"Cu": 1.0}, 30.0, 35.0)[1] < factor[1]


def test_bulk_sample_refuses_thickness():
    assert Sample(bulk=True).bulk
    with pytest.raises(ValueError, match="bulk"):
        Sample(thickness_nm=100.0, density_g_cm3=3.0, bulk=True)
