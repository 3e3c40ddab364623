"""EDXModel: G, labels, composition, k-factors, errors, golden fixture."""

import time
from pathlib import Path

import numpy as np
import pytest

from espm_cli.physics import (
    BeamEnergyError,
    Detector,
    EDXModel,
    EnergyAxis,
    NoLinesInRangeError,
    Sample,
    UnknownElementError,
)
from espm_cli.physics.detector import gaussian_channel_areas
from espm_cli.physics.sample import thin_film_absorption

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_G.npz"
ODD_AXIS = EnergyAxis(-0.47, 0.01, 4096)


def golden_model():
    """The fixed configuration stored in ``data/golden_G.npz``."""
    return EDXModel(
        EnergyAxis(-0.2, 0.02, 1024),
        ["Fe", "Pt", "O"],
        200.0,
        detector=Detector(mnka_fwhm_eV=128.0, elevation_deg=22.0),
        sample=Sample(thickness_nm=80.0, density_g_cm3=8.0, tilt_deg=5.0),
        ignored_elements=("Cu",),
    )


def test_shape_labels_masks():
    model = EDXModel(ODD_AXIS, ["Fe", "Pt"], 200.0, ignored_elements=("Cu",))
    assert model.G.shape == (4096, 5) and model.G.dtype == np.float64
    assert model.labels == ["Fe", "Pt", "Cu", "continuum_kramers", "continuum_correction"]
    assert model.continuum_mask.tolist() == [False, False, False, True, True]
    assert model.elements == ("Fe", "Pt", "Cu") and model.ignored_elements == ("Cu",)
    assert np.all(np.isfinite(model.G)) and np.all(model.G >= 0)
    assert {line.element for line in model.lines} == {"Fe", "Pt", "Cu"}


@pytest.mark.parametrize("beam", [15.0, 20.0, 200.0, 300.0])
def test_g_nonnegative_finite_and_zero_above_beam(beam):
    model = EDXModel(ODD_AXIS, ["C", "O", "Al", "Ca", "Cu", "Ag", "U"], beam, sample=Sample(50.0, 3.0))
    assert np.all(np.isfinite(model.G)) and np.all(model.G >= 0)
    continuum = model.G[:, model.continuum_mask]
    energies = ODD_AXIS.energies
    assert np.all(continuum[(energies >= beam) | (energies <= 0)] == 0)
    assert np.allclose(continuum.sum(axis=0), 1.0)


@pytest.mark.parametrize("thickness", [None, 200.0])
def test_each_line_column_sums_to_weight_times_efficiency_times_absorption(thickness):
    sample = Sample(thickness, 5.0 if thickness else None, composition={"Fe": 1, "Ni": 1})
    model = EDXModel(ODD_AXIS, ["Fe", "Ni"], 200.0, sample=sample)
    edges = ODD_AXIS.edges
    for index, symbol in enumerate(model.elements):
        expected = 0.0
        for line in (l for l in model.lines if l.element == symbol):
            fwhm = model.detector.fwhm_keV(line.energy_keV)
            area = gaussian_channel_areas(edges, line.energy_keV, fwhm).sum()
            assert area == pytest.approx(1.0, abs=1e-3)
            expected += (
                line.weight
                * model.detector.efficiency(line.energy_keV)
                * thin_film_absorption(
                    np.array([line.energy_keV]),
                    sample.composition,
                    sample.mass_thickness_g_cm2,
                    model.take_off_angle_deg,
                )[0]
            )
        assert model.G[:, index].sum() == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    "symbol, iupac", [("Cu", "KL3"), ("Fe", "KL3"), ("Pt", "L3M5"), ("Pt", "M5N7"), ("Si", "KL3")]
)
def test_peaks_land_in_the_right_channel_on_an_odd_axis(symbol, iupac):
    model = EDXModel(ODD_AXIS, [symbol], 200.0)
    line = [l for l in model.lines if l.iupac == iupac][0]
    single = gaussian_channel_areas(ODD_AXIS.edges, line.energy_keV, model.detector.fwhm_keV(line.energy_keV))
    expected_channel = int(round((line.energy_keV + 0.47) / 0.01))
    assert int(np.argmax(single)) == expected_channel
    window = model.G[expected_channel - 3 : expected_channel + 4, 0]
    assert np.argmax(window) in (2, 3, 4)


def test_composition_is_a_plain_normalisation_without_ignored_elements():
    model = EDXModel(ODD_AXIS, ["Fe", "Pt", "Cu"], 200.0, ignored_elements=("Cu",))
    W = np.array([[1.0, 3.0], [1.0, 1.0], [5.0, 0.0], [10.0, 2.0], [1.0, 1.0]])
    composition = model.composition(W)
    assert composition.elements == ("Fe", "Pt")
    np.testing.assert_allclose(composition.atomic_percent, [[50, 50], [75, 25]])
    masses = np.array([55.845, 195.08])
    expected = np.array([[1, 1], [3, 1]]) * masses
    np.testing.assert_allclose(
        composition.weight_percent, 100 * expected / expected.sum(1, keepdims=True), rtol=1e-3
    )
    assert composition.as_dicts()[1]["Fe"] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="shape"):
        model.composition(np.ones((3, 2)))


def test_atoms_ratio_is_recovered_from_counts():
    """W counts atoms: data made from 2 Fe : 1 Pt with G gives 66.7 at.% Fe back."""
    model = EDXModel(ODD_AXIS, ["Fe", "Pt"], 200.0)
    W = np.array([2.0, 1.0, 0.5, 0.1])
    W_fit, *_ = np.linalg.lstsq(model.G, model.G @ W, rcond=None)
    assert model.composition(W_fit).atomic_percent[0, 0] == pytest.approx(200 / 3, rel=1e-6)


def test_with_composition_changes_absorption_only():
    sample = Sample(thickness_nm=300.0, density_g_cm3=5.0)
    model = EDXModel(ODD_AXIS, ["Fe", "O"], 200.0, sample=sample)
    assert model.absorption_composition == {"Fe": 0.5, "O": 0.5}
    oxygen_rich = model.with_composition({"Fe": 0.1, "O": 0.9})
    assert oxygen_rich.absorption_composition["O"] == pytest.approx(0.9)
    assert not np.allclose(oxygen_rich.G, model.G)
    assert oxygen_rich.labels == model.labels
    W = np.array([[1.0, 9.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    from_W = model.with_composition_from_W(W)
    assert from_W.absorption_composition["Fe"] == pytest.approx((0.5 + 0.9) / 2)


def test_kfactors_rescale_columns():
    base = EDXModel(ODD_AXIS, ["Fe", "Pt"], 200.0)
    sums = base.G[:, :2].sum(axis=0)
    model_k = sums[0] * 195.084 / (sums[1] * 55.845)
    calibrated = EDXModel(ODD_AXIS, ["Fe", "Pt"], 200.0, kfactors={"Fe": 2.0, "Pt": 4.0})
    np.testing.assert_allclose(calibrated.G[:, 0], base.G[:, 0])
    np.testing.assert_allclose(calibrated.G[:, 1], base.G[:, 1] * model_k / 2.0, rtol=1e-3)
    # The calibrated model's own k-factor, k_Pt = S_Fe M_Pt / (S_Pt M_Fe), is the measured 2.
    sums_k = calibrated.G[:, :2].sum(axis=0)
    assert sums_k[0] * 195.084 / (sums_k[1] * 55.845) == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(ValueError, match="Au"):
        EDXModel(ODD_AXIS, ["Fe", "Pt"], 200.0, kfactors={"Au": 1.0})


def test_builds_in_under_a_second_for_real_file_parameters():
    start = time.perf_counter()
    EDXModel(
        EnergyAxis(-0.47225, 0.009999, 2048),
        ["Al", "C", "Ca", "Ce", "Fe", "Gd", "K", "Mg", "Na", "Nd", "O", "P", "Si", "Sm", "Th", "Ti"],
        20.0,
        detector=Detector(elevation_deg=35.0, azimuth_deg=90.0),
        sample=Sample(100.0, 3.0),
    )
    EDXModel(
        EnergyAxis(0.8315, 0.010005, 1917),
        ["Al", "Ca", "Fe", "Hf", "Lu", "Mg", "Nd", "Si", "Sm", "U"],
        200.0,
        detector=Detector(elevation_deg=22.0, azimuth_deg=45.0),
    )
    EDXModel(
        EnergyAxis(-0.96066, 0.00999866, 4096),
        ["C", "O", "Si", "Fe", "Cu"],
        200.0,
        detector=Detector(mnka_fwhm_eV=138.0, elevation_deg=22.3),
    )
    assert time.perf_counter() - start < 3.0


def test_errors_name_the_problem():
    with pytest.raises(UnknownElementError, match="Xx"):
        EDXModel(ODD_AXIS, ["Fe", "Xx"], 200.0)
    with pytest.raises(NoLinesInRangeError, match="'O'.*0.827"):
        EDXModel(EnergyAxis(0.8315, 0.01, 1917), ["Fe", "O"], 200.0)
    with pytest.raises(NoLinesInRangeError, match="'Pt'"):
        EDXModel(EnergyAxis(5.0, 0.01, 500), ["Pt"], 10.0)
    for beam in (0.0, -5.0, float("nan"), "200"):
        with pytest.raises(BeamEnergyError, match="beam_energy_keV"):
            EDXModel(ODD_AXIS, ["Fe"], beam)
    with pytest.raises(ValueError, match="more than once"):
        EDXModel(ODD_AXIS, ["Fe", "Fe"], 200.0)
    with pytest.raises(ValueError, match="axis"):
        EDXModel(object(), ["Fe"], 200.0)
    assert all(issubclass(e, ValueError) for e in (UnknownElementError, NoLinesInRangeError, BeamEnergyError))


def test_golden_fixture():
    stored = np.load(GOLDEN)
    model = golden_model()
    assert list(stored["labels"]) == model.labels
    np.testing.assert_allclose(model.G, stored["G"], rtol=1e-6, atol=1e-9 * stored["G"].max())


def test_bulk_model_lowers_soft_lines_and_continuum():
    axis = EnergyAxis(-0.47, 0.01, 2048)
    thin = EDXModel(axis, ["Cu", "Al"], 15.0)
    bulk = EDXModel(axis, ["Cu", "Al"], 15.0, sample=Sample(bulk=True))
    cu_l = axis.channel_of(0.93)
    cu_k = axis.channel_of(8.04)
    ratio_thin = thin.G[cu_l, 0] / thin.G[cu_k, 0]
    ratio_bulk = bulk.G[cu_l, 0] / bulk.G[cu_k, 0]
    assert ratio_bulk < 0.8 * ratio_thin
    assert np.all(np.isfinite(bulk.G)) and np.all(bulk.G >= 0)


def test_elements_with_lines_drops_elements_off_the_axis():
    from espm_cli.physics import elements_with_lines

    axis = EnergyAxis(0.8315, 0.01, 1917)
    assert elements_with_lines(axis, ["Mg", "O", "Fe"], 200.0) == ["Mg", "Fe"]
    with pytest.raises(UnknownElementError):
        elements_with_lines(axis, ["Zz"], 200.0)
