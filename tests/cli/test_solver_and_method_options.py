"""--solver, --l1, --learning-rate and --method reach the solver; signed data and their loss."""

import json

import h5py
import numpy as np

from espm_cli.cli.main import cli
from espm_cli.io import read_result


def _decompose(runner, image, *extra):
    out = image.parent / "out"
    result = runner.invoke(
        cli,
        ["decompose", str(image), "-k", "2", "--max-iter", "15", "-o", str(out), "--overwrite", "-q", *extra],
    )
    return result, out / f"{image.stem}.h5"


def _params(path):
    with h5py.File(path, "r") as handle:
        return json.loads(handle.attrs["estimator_params"])


def test_solver_and_l1_are_recorded(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--solver", "pgd", "--l1", "0.5")
    assert result.exit_code == 0, result.output
    params = _params(saved)
    assert params["solver"] == "pgd" and params["l1"] == 0.5
    assert read_result(saved).loss_names == [
        "kl_divergence",
        "laplacian",
        "log_sparsity",
        "l1_sparsity",
        "total",
    ]
    history = read_result(saved).loss_history[:, -1]
    assert np.all(np.diff(history) <= 1e-9 * np.abs(history[:-1]))


def test_adagrad_with_its_rate(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--solver", "adagrad", "--learning-rate", "0.2")
    assert result.exit_code == 0, result.output
    params = _params(saved)
    assert params["solver"] == "adagrad" and params["learning_rate"] == 0.2


def test_semi_nmf_method(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--method", "semi-nmf")
    assert result.exit_code == 0, result.output
    saved_result = read_result(saved)
    assert saved_result.loss_names == ["frobenius", "l1_sparsity", "total"]
    assert np.min(saved_result.W) >= 0


def _signed_copy(image):
    import hyperspy.api as hs

    signal = hs.load(image)
    data = np.asarray(signal.data, dtype=np.float64)
    signal.data = data - data.mean(axis=(0, 1))  # background-subtracted: signed
    path = image.parent / "signed.hspy"
    signal.save(path, overwrite=True)
    return path


def test_signed_data_kl_refuses_naming_what_fits_them(runner, small_image):
    signed = _signed_copy(small_image[0])
    result, saved = _decompose(runner, signed)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "negative values" in line and "--method semi-nmf" in line and "--beta-loss frobenius" in line
    assert "Traceback" not in result.output and not saved.exists()


def test_signed_data_with_semi_nmf_and_frobenius(runner, small_image):
    signed = _signed_copy(small_image[0])
    for extra in (["--method", "semi-nmf"], ["--beta-loss", "frobenius", "--simplex", "none"]):
        result, saved = _decompose(runner, signed, *extra)
        assert result.exit_code == 0, result.output
        assert read_result(saved).loss_names[0] == "frobenius"


def test_semi_nmf_refuses_smooth_nmf_settings(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--method", "semi-nmf", "--lambda-L", "1")
    assert result.exit_code in (1, 2)
    line = result.stderr.strip().splitlines()[-1]
    assert "applies to method smooth-nmf only" in line
    assert not saved.exists()
