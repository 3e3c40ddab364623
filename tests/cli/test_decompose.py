"""espm decompose on small simulated data: outputs, summary, config handling."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from espm_cli.cli.main import cli
from espm_cli.io import read_result

FAST = ["--max-iter", "30", "-q"]


def test_help_does_not_import_the_library():
    code = (
        "import sys, espm_cli.cli.main; "
        "print(sorted(m for m in ('numpy', 'hyperspy', 'matplotlib', 'h5py', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_decompose_writes_all_files_and_prints_summary(runner, small_image):
    image, truth = small_image
    result = runner.invoke(cli, ["decompose", str(image), "--truth", str(truth), *FAST])
    assert result.exit_code == 0, result.output
    folder = image.parent / "small_espm"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "small.h5",
            "maps.png",
            "spectra.png",
            "composition.png",
            "convergence.png",
            "composition.csv",
            "run.yaml",
        ]
    )
    out = result.stdout
    assert "3 phases" in out and "composition (at.%" in out and "compared with the truth" in out
    assert str(folder) in out
    saved = read_result(folder / "small.h5")
    # physics fits start at 0.2 keV (below: the detector's zero peak): 512 - 10 channels
    assert saved.maps.shape == (3, 16, 16) and saved.spectra.shape == (3, 502)
    assert saved.energy[0] == pytest.approx(0.2)
    assert saved.loss_history.shape == (saved.n_iter, 4)
    # undetected elements have no composition (NaN); the detected ones share 100 at.%
    np.testing.assert_allclose(np.nansum(saved.composition, axis=1), 100.0)
    assert saved.phase_kinds == ["phase"] * 3 and saved.detected.any(axis=1).all()
    np.testing.assert_allclose(saved.maps.sum(axis=0), 1.0, atol=1e-6)  # simplex H
    # phase spectra (counts per pixel) add up to about the data's mean spectrum
    assert saved.spectra.sum() == pytest.approx(saved.mean_spectrum.sum(), rel=0.02)
    with h5py.File(folder / "small.h5") as f:
        assert len(f.attrs["input_sha256"]) == 64
        assert yaml.safe_load(f.attrs["config_yaml"])["max_iter"] == 30
    # the phases came out right: every true phase matched within a few degrees
    angles = [float(line.split()[2].rstrip("°")) for line in out.splitlines()[-3:]]
    assert max(angles) < 5.0


def test_existing_result_needs_overwrite(runner, small_image):
    image, _ = small_image
    assert runner.invoke(cli, ["decompose", str(image), *FAST]).exit_code == 0
    again = runner.invoke(cli, ["decompose", str(image), *FAST])
    assert again.exit_code == 1
    assert "exists; pass --overwrite" in again.output
    assert runner.invoke(cli, ["decompose", str(image), "--overwrite", *FAST]).exit_code == 0


def test_config_fills_defaults_and_command_line_overrides(runner, small_image, tmp_path):
    image, _ = small_image
    config = tmp_path / "run.yaml"
    config.write_text(
        f"file: {image.name}\nn_components: 2\nlambda-L: 0.5\nmax_iter: 20\noutput_dir: out\nsimplex: none\n"
    )
    result = runner.invoke(cli, ["decompose", "--config", str(config), "-k", "3", "-q"])
    assert result.exit_code == 0, result.output
    saved = read_result(tmp_path / "out" / "small.h5")
    assert saved.n_components == 3  # the command line won
    assert saved.config["lambda_L"] == 0.5  # lambda-L accepted as lambda_L
    assert saved.config["simplex"] == "none"
    assert saved.estimator_params["simplex"] is None
    # run.yaml reproduces the run
    rerun = runner.invoke(
        cli, ["decompose", "--config", str(tmp_path / "out" / "run.yaml"), "--overwrite", "-q"]
    )
    assert rerun.exit_code == 0, rerun.output
    again = read_result(tmp_path / "out" / "small.h5")
    np.testing.assert_allclose(again.W, saved.W)


def test_no_physics_bin_crop_energy_range(runner, small_image):
    image, _ = small_image
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(image),
            "--no-physics",
            "-k",
            "2",
            "--bin",
            "2",
            "--crop",
            "0",
            "0",
            "12",
            "10",
            "--energy-range",
            "0.2",
            "8",
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    saved = read_result(image.parent / "small_espm" / "small.h5")
    assert saved.maps.shape == (2, 5, 6)
    assert saved.elements == [] and saved.composition.shape == (2, 0)
    assert saved.energy[0] == pytest.approx(0.2) and saved.energy[-1] == pytest.approx(8.0)
    assert "no physics model" in result.stdout


def test_info_lists_found_and_missing_metadata(runner, small_image):
    image, _ = small_image
    result = runner.invoke(cli, ["info", str(image)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "16 x 16" in out and "512 channels" in out and "per pixel" in out
    assert "beam energy (keV)        200" in out
    assert "metadata missing:" in out and "thickness (nm)" in out


def test_simulate_command_is_deterministic(runner, tmp_path):
    args = ["--size", "8", "10", "--channels", "256", "--channel-width", "0.04", "--seed", "5"]
    first = runner.invoke(cli, ["simulate", str(tmp_path / "a.hspy"), *args])
    second = runner.invoke(
        cli, ["simulate", str(tmp_path / "b.hspy"), *args, "--phase", "Fe=50,Pt=50", "--phase", "Ti=33,O=67"]
    )
    again = runner.invoke(cli, ["simulate", str(tmp_path / "c.hspy"), *args])
    assert first.exit_code == second.exit_code == again.exit_code == 0, first.output + second.output
    a, c = read_result(tmp_path / "a_truth.h5"), read_result(tmp_path / "c_truth.h5")
    np.testing.assert_array_equal(a.maps, c.maps)
    b = read_result(tmp_path / "b_truth.h5")
    assert b.n_components == 2 and sorted(b.elements) == ["Fe", "O", "Pt", "Ti"]
    assert "FePt particles: Fe 50.0, Pt 50.0 at.%" in first.stdout
