"""The command line and hyperspy run one workflow: the same file with the same options
gives the same W and H, the same phase names and the same compositions."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from espm_cli.analysis import DEFAULT_CONFIG, ESTIMATOR_DEFAULTS
from espm_cli.cli.main import cli
from espm_cli.io import read_result

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sample.hspy"
pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="sample_data/sample.hspy is absent")


def test_one_set_of_defaults():
    import click

    from espm_cli.cli.decompose import decompose

    defaults = {p.name: p.default for p in decompose.params if isinstance(p, click.Option)}
    for key, value in ESTIMATOR_DEFAULTS.items():
        # None is spelt "none" where the option takes it as a choice (--simplex none)
        assert defaults[key] == value or (value is None and defaults[key] == "none"), key
        assert DEFAULT_CONFIG.get(key, value) == value


@pytest.mark.parametrize(
    "options",
    [
        {},  # the defaults of both front ends
        {"simplex": "none", "lambda_L": 0.5, "max_iter": 25},
    ],
)
def test_cli_and_decompose_phases_give_the_same_fit(tmp_path, options):
    from click.testing import CliRunner

    import espm_cli

    settings = {"max_iter": 25, **options}
    argv = ["decompose", str(SAMPLE), "-o", str(tmp_path), "-q", "--max-iter", str(settings["max_iter"])]
    if "simplex" in settings:
        argv += ["--simplex", settings["simplex"]]
    if "lambda_L" in settings:
        argv += ["--lambda-L", str(settings["lambda_L"])]
    outcome = CliRunner().invoke(cli, argv)
    assert outcome.exit_code == 0, outcome.output
    saved = read_result(tmp_path / "sample.h5")

    signal = espm_cli.load(SAMPLE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = signal.decompose_phases(3, **settings)
    np.testing.assert_allclose(results.W, saved.W, rtol=0, atol=1e-10 * np.abs(saved.W).max())
    np.testing.assert_allclose(results.maps, saved.maps, rtol=0, atol=1e-10)
    np.testing.assert_allclose(results.energy, saved.energy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(results.spectra, saved.spectra, rtol=1e-9, atol=1e-12)
    assert results.names == tuple(saved.phase_names)
    np.testing.assert_array_equal(np.isnan(results.result.composition), np.isnan(saved.composition))
    np.testing.assert_allclose(results.result.composition, saved.composition, atol=1e-8)
    # ... and load_result gives the same table back
    loaded = espm_cli.load_result(tmp_path / "sample.h5")
    assert loaded.composition.phases == results.composition.phases
