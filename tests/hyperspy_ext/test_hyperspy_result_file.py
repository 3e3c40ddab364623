"""A result file written by espm_cli.io comes back as hyperspy signals."""

import h5py
import numpy as np
import pytest

import espm_cli
from espm_cli.hyperspy_ext import EspmCliEDSSEMSpectrum, EspmCliEDSTEMSpectrum
from espm_cli.io import DecompositionResult, write_result


def result_file(path, *, k=3, shape=(4, 6), n_channels=40, microscope="TEM", pixel_size=2.5):
    rng = np.random.default_rng(3)
    result = DecompositionResult(
        energy=0.2 + 0.01 * np.arange(n_channels),
        G=rng.random((n_channels, 4)),
        G_labels=["Fe", "O", "continuum_kramers", "continuum_correction"],
        W=rng.random((4, k)),
        maps=rng.random((k, *shape)),
        spectra=rng.random((k, n_channels)),
        mean_spectrum=rng.random(n_channels),
        composition=rng.random((k, 2)) * 100,
        elements=["Fe", "O"],
        loss_history=rng.random((5, 2)),
        loss_names=["kl_divergence", "total"],
        n_iter=5,
        converged=True,
        fit_seconds=0.1,
        acquisition={"beam_energy_keV": 15.0 if microscope == "SEM" else 200.0, "microscope": microscope},
        pixel_size=pixel_size,
        pixel_unit="nm" if pixel_size else None,
    )
    write_result(result, path)
    return result


def test_round_trip_through_the_io_writer(tmp_path):
    written = result_file(tmp_path / "run.h5")
    loaded = espm_cli.load_result(tmp_path / "run.h5")

    maps = loaded.maps
    assert maps.axes_manager.navigation_shape == (3,)
    assert maps.axes_manager.signal_shape == (6, 4)  # (nx, ny)
    np.testing.assert_array_equal(maps.data, written.maps)
    x_axis, y_axis = maps.axes_manager.signal_axes
    assert (x_axis.scale, x_axis.units, y_axis.scale, y_axis.units) == (2.5, "nm", 2.5, "nm")

    spectra = loaded.spectra
    assert type(spectra) is EspmCliEDSTEMSpectrum
    np.testing.assert_array_equal(spectra.data, written.spectra)
    energy = spectra.axes_manager.signal_axes[0]
    assert energy.units == "keV"
    np.testing.assert_allclose(energy.axis, written.energy, atol=1e-12)
    assert spectra.metadata.Sample.elements == ["Fe", "O"]
    assert spectra.metadata.Acquisition_instrument.TEM.beam_energy == 200.0

    np.testing.assert_allclose(loaded.composition.atomic_percent, written.composition)
    assert loaded.composition.elements == ("Fe", "O")
    np.testing.assert_array_equal(loaded.W, written.W)
    assert loaded.G_labels == tuple(written.G_labels)
    assert loaded.attributes["tool"] == "espm_cli"


def test_sem_run_without_pixel_size(tmp_path):
    result_file(tmp_path / "sem.h5", microscope="SEM", pixel_size=None)
    loaded = espm_cli.load_result(tmp_path / "sem.h5")
    assert type(loaded.spectra) is EspmCliEDSSEMSpectrum
    assert loaded.spectra.metadata.Acquisition_instrument.SEM.beam_energy == 15.0
    x_axis = loaded.maps.axes_manager.signal_axes[0]
    assert x_axis.scale == 1.0


def test_not_a_result_file(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["energy"] = np.arange(3.0)
    with pytest.raises(ValueError, match="not an espm_cli result file"):
        espm_cli.load_result(tmp_path / "other.h5")


def test_result_of_the_demo_run_when_present():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "sample_data" / "sample_espm" / "sample.h5"
    if not path.exists():
        pytest.skip("run `make demo` first to produce sample_data/sample_espm/sample.h5")
    loaded = espm_cli.load_result(path)
    with h5py.File(path, "r") as handle:
        maps, spectra, energy = handle["maps"][()], handle["spectra"][()], handle["energy"][()]
    np.testing.assert_array_equal(loaded.maps.data, maps)
    np.testing.assert_array_equal(loaded.spectra.data, spectra)
    np.testing.assert_allclose(loaded.spectra.axes_manager.signal_axes[0].axis, energy, atol=1e-9)
    # the detected elements of each phase share 100 at.% (undetected: NaN)
    np.testing.assert_allclose(np.nansum(loaded.composition.atomic_percent, axis=1), 100.0, rtol=1e-6)
