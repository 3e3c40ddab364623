"""The run pipeline shared by decompose and batch (no click)."""

import pytest

from espm_cli.cli import pipeline
from espm_cli.io import load_spectrum_image


def test_config_hash_ignores_presentation_and_follows_the_fit():
    base = {"file": "/data/a.hspy", "n_components": 3}
    reference = pipeline.config_hash(base, "0" * 64)
    assert (
        pipeline.config_hash({**base, "output_dir": "/x", "overwrite": True, "log_spectra": True}, "0" * 64)
        == reference
    )
    assert pipeline.config_hash({**base, "n_components": 3, "lambda_L": 0.0}, "0" * 64) == reference
    assert pipeline.config_hash({**base, "lambda_L": 1.0}, "0" * 64) != reference
    assert pipeline.config_hash(base, "1" * 64) != reference


def test_full_config_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown configuration key 'lamda'"):
        pipeline.full_config({"lamda": 1})


def test_default_output_next_to_input(tmp_path):
    assert pipeline.result_path({"file": str(tmp_path / "scan.bcf")}) == tmp_path / "scan_espm" / "scan.h5"
    assert pipeline.result_path({"file": "scan.bcf", "output_dir": str(tmp_path)}) == tmp_path / "scan.h5"


def test_physics_window_cuts_zero_peak_and_above_beam(small_image):
    from espm_cli.analysis import choose_fit_window
    from espm_cli.physics import EnergyAxis

    image = load_spectrum_image(small_image[0])
    acquisition = image.acquisition.replace(beam_energy_keV=5.0)
    axis = EnergyAxis(image.energy_offset_keV, image.energy_scale_keV, image.n_channels)
    window, model = choose_fit_window(axis, acquisition)
    energy = window.axis.energies
    assert energy[0] == pytest.approx(0.2) and energy[-1] <= 5.0
    assert energy[-1] > 5.0 - 0.02
    assert (window.start, window.stop) == (10, 10 + model.G.shape[0])
    mask = window.signal_mask()
    assert mask.sum() == image.n_channels - model.G.shape[0] and not mask[10 : window.stop].any()
    # given an explicit range, or without physics, nothing is cut
    assert choose_fit_window(axis, acquisition, physics=False)[0].is_whole_axis
    explicit, _ = choose_fit_window(axis, acquisition, cut_low=False)
    assert explicit.start < 10


def test_run_decomposition_returns_the_outcome(small_image, tmp_path):
    outcome = pipeline.run_decomposition(
        {"file": str(small_image[0]), "max_iter": 10, "output_dir": str(tmp_path / "out"), "n_components": 2}
    )
    assert outcome.output_dir == tmp_path / "out"
    assert [p.name for p in outcome.files][:2] == ["small.h5", "maps.png"]
    result = outcome.result
    assert result.n_iter <= 10 and result.W.shape[1] == 2
    assert result.config_hash == pipeline.config_hash(result.config, result.input_sha256)
    assert "numpy" in result.versions and result.estimator_params["max_iter"] == 10
