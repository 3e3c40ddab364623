"""Detector: line widths, channel-integrated Gaussians, efficiency."""

import numpy as np
import pytest

from espm_cli.physics import Detector, EnergyAxis
from espm_cli.physics.detector import gaussian_channel_areas, line_fwhm_keV
from espm_cli.physics.errors import PhysicsInputError


@pytest.mark.parametrize("resolution", [121.0, 130.0, 138.0])
def test_fwhm_at_mn_ka_is_the_given_resolution(resolution):
    assert line_fwhm_keV(5.8987, resolution) == pytest.approx(resolution / 1000.0, rel=1e-12)
    assert Detector(mnka_fwhm_eV=resolution).fwhm_keV(5.8987) == pytest.approx(resolution / 1000.0, rel=1e-12)


def test_fwhm_grows_with_energy_and_has_a_floor():
    widths = line_fwhm_keV(np.array([0.1, 1.0, 5.0, 10.0, 20.0]), 121.0, 30.0)
    assert np.all(np.diff(widths) > 0)
    assert widths[0] == pytest.approx(0.030)
    # Formula value, away from the floor: sqrt(130^2 + 2.5 (10000 - 5898.7)) eV.
    assert line_fwhm_keV(10.0, 130.0) == pytest.approx(np.sqrt(130.0**2 + 2.5 * 4101.3) / 1e3)


def test_measured_fwhm_of_channel_gaussian_matches():
    axis = EnergyAxis(0.0, 0.001, 20000)
    areas = gaussian_channel_areas(axis.edges, 5.8987, 0.130)
    energies = axis.energies
    above = energies[areas >= areas.max() / 2]
    assert above[-1] - above[0] == pytest.approx(0.130, abs=0.002)


def test_narrow_line_keeps_its_area_on_coarse_channels():
    axis = EnergyAxis(0.0, 0.02, 100)
    areas = gaussian_channel_areas(axis.edges, 0.277, 0.030)
    assert areas.sum() == pytest.approx(1.0, abs=1e-9)


def test_default_efficiency_is_physical():
    detector = Detector()
    energies = np.array([-0.1, 0.05, 0.28, 0.52, 1.0, 5.0, 10.0, 20.0, 60.0])
    efficiency = detector.efficiency(energies)
    assert np.all((efficiency >= 0) & (efficiency <= 1))
    assert efficiency[0] == 0 and efficiency[1] == 0
    assert efficiency[4] < efficiency[5]  # window absorbs low energies
    assert efficiency[5] > 0.9  # flat middle
    assert efficiency[8] < efficiency[6]  # thin crystal loses hard photons
    assert efficiency[3] > efficiency[2] > 0.05  # C K and O K visible


def test_windowless_detector_is_more_efficient_at_low_energy():
    windowless = Detector(window_layers=())
    assert windowless.efficiency(0.28) > Detector().efficiency(0.28)


def test_efficiency_file(tmp_path):
    path = tmp_path / "eff.txt"
    path.write_text("# energy efficiency\n0.1 0.0\n1.0 0.5\n10.0 1.0\n")
    detector = Detector(efficiency_file=path)
    assert detector.efficiency(0.55) == pytest.approx(0.25)
    assert detector.efficiency(50.0) == pytest.approx(1.0)


def test_bad_efficiency_file_and_parameters(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(PhysicsInputError, match="efficiency_file"):
        Detector(efficiency_file=path).efficiency(1.0)
    with pytest.raises(ValueError, match="efficiency_file"):
        Detector(efficiency_file=tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="mnka_fwhm_eV"):
        Detector(mnka_fwhm_eV=-5.0)
