""".zspy (hyperspy's zarr format, a folder) is written, read and decomposed."""

import warnings

import pytest
from click.testing import CliRunner

from espm_cli.cli.main import cli
from espm_cli.io import file_sha256, read_result

pytest.importorskip("zarr")


def test_simulate_decompose_info_and_load_a_zspy_folder(tmp_path):
    runner = CliRunner()
    target = tmp_path / "scan.zspy"
    made = runner.invoke(cli, ["simulate", str(target), "--size", "8", "8", "--channels", "200"])
    assert made.exit_code == 0, made.output
    assert target.is_dir() and (tmp_path / "scan_truth.h5").is_file()
    again = runner.invoke(
        cli, ["simulate", str(target), "--size", "8", "8", "--channels", "200", "--overwrite"]
    )
    assert again.exit_code == 0, again.output
    assert runner.invoke(cli, ["info", str(target)]).exit_code == 0
    run = runner.invoke(cli, ["decompose", str(target), "-k", "2", "--max-iter", "3", "-q"])
    assert run.exit_code == 0, run.output
    saved = read_result(tmp_path / "scan_espm" / "scan.h5")
    assert saved.maps.shape == (2, 8, 8) and saved.input_sha256 == file_sha256(target)

    import espm_cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal = espm_cli.load(target)
    assert signal.metadata.Signal.signal_type == "EDS_espm_cli"
    assert signal.axes_manager.navigation_shape == (8, 8)


def test_a_plain_folder_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    result = CliRunner().invoke(cli, ["decompose", str(folder)])
    assert result.exit_code == 2
    assert "is a directory" in result.output and "Traceback" not in result.output
    assert CliRunner().invoke(cli, ["simulate", str(folder)]).exit_code == 1
