"""The run pipeline shared by decompose and batch (no click)."""

import numpy as np
import pytest

from espm_cli.cli import pipeline
from espm_cli.io import load_spectrum_image


def test_config_hash_ignores_presentation_and_follows_the_fit():
    base = {"file": "/data/a.hspy", "n_components": 3}
    reference = pipeline.config_hash(base, "0" * 64)
    assert pipeline.config_hash({**base, "output_dir": "/x", "overwrite": True,
                                 "log_spectra": True}, "0" * 64) == reference
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
    image = load_spectrum_image(small_image[0])
    acquisition = image.acquisition.replace(beam_energy_keV=5.0)
    config = pipeline.full_config({"file": str(small_image[0])})
    window = pipeline.physics_window(image, acquisition, config)
    assert window.energy[0] == pytest.approx(0.2) and window.energy[-1] <= 5.0
    assert window.energy[-1] > 5.0 - 0.02
    dense = image.counts.toarray() if image.is_sparse else image.counts
    part = window.counts.toarray() if window.is_sparse else window.counts
    np.testing.assert_array_equal(part, dense[:, 10:10 + window.n_channels])
    assert window.processing["channel_window"] == [10, 10 + window.n_channels]
    # given an explicit range, or without physics, nothing is cut
    assert pipeline.physics_window(image, acquisition, {**config, "no_physics": True}) is image
    assert pipeline.physics_window(image, acquisition, {**config, "energy_range": [0, 9]}) is image


def test_run_decomposition_returns_the_outcome(small_image, tmp_path):
    outcome = pipeline.run_decomposition({"file": str(small_image[0]), "max_iter": 10,
                                          "output_dir": str(tmp_path / "out"), "n_components": 2})
    assert outcome.output_dir == tmp_path / "out"
    assert [p.name for p in outcome.files][:2] == ["small.h5", "maps.png"]
    result = outcome.result
    assert result.n_iter <= 10 and result.W.shape[1] == 2
    assert result.config_hash == pipeline.config_hash(result.config, result.input_sha256)
    assert "numpy" in result.versions and result.estimator_params["max_iter"] == 10
