"""--backend reaches the solver; `espm info --backends` says what runs here and why not."""

import json

import h5py
import numpy as np
import pytest

from espm_cli.analysis.defaults import BACKEND_CHOICES
from espm_cli.cli.main import cli
from espm_cli.io import read_result
from espm_cli.solver.backends import _BACKEND_MODULES

#: The backends the package ships (tests may register more in the same process).
SHIPPED = set(_BACKEND_MODULES)

pytest.importorskip("array_api_compat")


def test_the_option_lists_every_registered_backend():
    assert set(BACKEND_CHOICES) == {"auto", *SHIPPED}


def test_info_lists_the_backends(runner):
    from espm_cli.solver._array_api_backend import availability

    result = runner.invoke(cli, ["info", "--backends"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("solver backends")
    listed = {line.split(":")[0].strip(): line for line in lines[1:]}
    assert set(listed) == SHIPPED
    assert "available (numpy/scipy" in listed["reference"]
    for name, ok, detail in availability():
        assert listed[name].split(":", 1)[1].strip() == (
            f"{'available' if ok else 'not available'} ({detail})"
        )
    if not {name: ok for name, ok, _ in availability()}["cuda"]:
        assert "not available (" in listed["cuda"]


def test_info_needs_a_file_or_backends(runner):
    result = runner.invoke(cli, ["info"])
    assert result.exit_code == 2
    assert "give a FILE to describe, or --backends" in result.output


def test_array_api_backend_gives_the_reference_fit(runner, small_image):
    image, _ = small_image
    fits = {}
    for backend in ("reference", "array-api"):
        out = image.parent / backend
        result = runner.invoke(
            cli,
            [
                "decompose",
                str(image),
                "-k",
                "3",
                "--max-iter",
                "10",
                "--tol",
                "0",
                "-q",
                "-o",
                str(out),
                "--backend",
                backend,
            ],
        )
        assert result.exit_code == 0, result.output
        saved = out / f"{image.stem}.h5"
        with h5py.File(saved, "r") as handle:
            assert json.loads(handle.attrs["estimator_params"])["backend"] == backend
        fits[backend] = read_result(saved)
    reference, fit = fits["reference"], fits["array-api"]
    for name in ("W", "maps"):
        expected = getattr(reference, name)
        difference = np.max(np.abs(getattr(fit, name) - expected)) / np.max(np.abs(expected))
        assert difference <= 1e-10, (name, difference)
