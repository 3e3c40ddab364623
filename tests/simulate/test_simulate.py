import numpy as np
import pytest

from espm_cli.io import load_spectrum_image, read_result
from espm_cli.simulate import (
    DEFAULT_PHASES,
    SimulationSettings,
    abundance_maps,
    parse_phase,
    simulate,
    write_simulation,
)

SMALL = dict(size=(12, 10), n_channels=512, energy_scale_keV=0.02, dose=300.0)


def test_same_seed_same_counts_other_seed_other_counts():
    a = simulate(SimulationSettings(seed=3, **SMALL)).counts
    b = simulate(SimulationSettings(seed=3, **SMALL)).counts
    c = simulate(SimulationSettings(seed=4, **SMALL)).counts
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_truth_is_consistent_with_counts():
    sim = simulate(SimulationSettings(seed=1, **SMALL))
    truth = sim.truth
    assert sim.counts.shape == (12, 10, 512) and sim.counts.dtype.kind == "u"
    np.testing.assert_allclose(truth.maps.sum(axis=0), 1.0)
    assert truth.maps.min() >= 0
    # expected counts G W H; the mean over pixels is the sum of the truth spectra
    expected_mean = truth.spectra.sum(axis=0)
    assert expected_mean.sum() == pytest.approx(300.0, rel=1e-9)
    assert sim.counts.sum() / 120 == pytest.approx(300.0, rel=0.02)
    for phase, row in zip(DEFAULT_PHASES, truth.composition):
        for symbol, percent in phase.composition.items():
            assert row[truth.elements.index(symbol)] == pytest.approx(percent)
    continuum = truth.G_labels.index("continuum_kramers")
    line_share = (truth.G[:, :continuum] @ truth.W[:continuum]).sum(axis=0) / (truth.G @ truth.W).sum(axis=0)
    np.testing.assert_allclose(line_share, 0.7)


def test_maps_shapes_and_errors():
    maps = abundance_maps((20, 30), 4, ["gradient", "particles", "layer"], rng=0)
    assert maps.shape == (4, 20, 30)
    np.testing.assert_allclose(maps.sum(axis=0), 1.0)
    assert np.all(maps[1:].max(axis=(1, 2)) > 0.3)  # every shape is visible
    with pytest.raises(ValueError, match="shape 'blob'"):
        abundance_maps((5, 5), 2, ["blob"])


def test_parse_phase():
    phase = parse_phase("Fe=1, Pt=3")
    assert phase.composition == {"Fe": 25.0, "Pt": 75.0}
    for bad in ("Fe50", "Fe=abc", "Fe=-2"):
        with pytest.raises(ValueError):
            parse_phase(bad)


def test_written_file_has_eds_metadata_and_truth(tmp_path):
    sim = simulate(SimulationSettings(seed=2, tilt_deg=10.0, **SMALL))
    image_path, truth_path = write_simulation(sim, tmp_path / "sim.hspy")
    assert truth_path.name == "sim_truth.h5"
    image = load_spectrum_image(image_path)
    np.testing.assert_array_equal(
        image.counts.toarray() if image.is_sparse else image.counts, sim.counts.reshape(120, 512)
    )
    acq = image.acquisition
    assert acq.microscope == "TEM" and acq.beam_energy_keV == 200.0 and acq.tilt_deg == 10.0
    assert acq.mnka_fwhm_eV == 130.0 and acq.elevation_deg == 22.0
    assert set(acq.elements) == {"O", "Si", "Al", "Fe", "Pt", "Ti"}
    assert image.energy_scale_keV == pytest.approx(0.02) and image.pixel_unit == "nm"
    truth = read_result(truth_path)
    np.testing.assert_allclose(truth.maps, sim.truth.maps)
    with pytest.raises(FileExistsError):
        write_simulation(sim, tmp_path / "sim.hspy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.hspy", "sim_truth.h5"]


def test_bad_settings():
    with pytest.raises(ValueError, match="dose"):
        simulate(SimulationSettings(dose=-1.0))
    with pytest.raises(ValueError, match="element"):
        simulate(SimulationSettings(phases=(parse_phase("Xx=100"),), **SMALL))
