"""--beta-loss, --normalize and --mask-energy reach the solver and the result file."""

import json

import h5py
import numpy as np
import pytest

from espm_cli.cli.main import cli
from espm_cli.io import read_result


def _decompose(runner, image, *extra):
    out = image.parent / "out"
    result = runner.invoke(
        cli, ["decompose", str(image), "-k", "3", "--max-iter", "15", "-o", str(out), "--overwrite", *extra]
    )
    return result, out / f"{image.stem}.h5"


def _fitted(path):
    with h5py.File(path, "r") as handle:
        return json.loads(handle.attrs["estimator_params"])


def test_beta_loss_normalize_and_mask_energy_are_recorded(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(
        runner,
        image,
        "--beta-loss",
        "frobenius",
        "--normalize",
        "--mask-energy",
        "1.6",
        "1.9",
        "--mask-energy",
        "6.2",
        "6.5",
    )
    assert result.exit_code == 0, result.output
    params = _fitted(saved)
    assert params["beta_loss"] == "frobenius" and params["normalize"] is True
    fitted = params["fitted"]
    assert fitted["beta"] == 2.0 and fitted["data_scale"] != 1.0
    energy = read_result(saved).energy
    expected = int(np.sum(((energy >= 1.6) & (energy <= 1.9)) | ((energy >= 6.2) & (energy <= 6.5))))
    assert fitted["missing"]["masked_channels"] == expected > 0
    assert read_result(saved).loss_names[0] == "frobenius"


def test_defaults_are_the_poisson_fit_of_the_raw_counts(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image)
    assert result.exit_code == 0, result.output
    fitted = _fitted(saved)["fitted"]
    assert fitted["beta"] == 1.0 and fitted["data_scale"] == 1.0
    assert fitted["missing"]["masked_channels"] == 0
    assert len(fitted["init_objectives"]) == 1 and fitted["best_init"] == 0


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--beta-loss", "poisson"], 2, "'--beta-loss': must be one of kullback-leibler"),
        (["--beta-loss", "nan"], 2, "'--beta-loss': must be one of"),
        (["--mask-energy", "2", "1"], 2, "'--mask-energy': must be LOW < HIGH"),
        (["--mask-energy", "0", "99"], 1, "--mask-energy leaves none of the"),
    ],
)
def test_bad_loss_and_mask_values(runner, small_image, extra, code, message):
    image, _ = small_image
    result, saved = _decompose(runner, image, *extra)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not saved.exists()
