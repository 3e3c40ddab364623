"""On real files the summary names only detected elements and says what the model missed."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from espm_cli.cli.main import cli
from espm_cli.io import read_result

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason="no ../shared/realdata")


def decompose(name, tmp_path, *options):
    result = CliRunner().invoke(cli, ["decompose", str(REALDATA / name), "-o", str(tmp_path), *options])
    assert result.exit_code == 0, result.output
    return result, read_result(tmp_path / f"{Path(name).stem}.h5")


def named_elements(name):
    match = re.search(r"\(([A-Za-z-]+)\)", name)
    if not match or match.group(1) in ("continuum", "empty"):
        return []
    return match.group(1).split("-")


def check_names_only_detected(saved):
    for index, name in enumerate(saved.phase_names):
        for element in named_elements(name):
            assert saved.detected[index, saved.elements.index(element)], (name, element)
    # no composition for an element that fails the detection test
    np.testing.assert_array_equal(np.isnan(saved.composition), ~saved.detected)


def test_test_tem_summary_points_at_si_and_names_no_undetected_element(tmp_path):
    result, saved = decompose("test_TEM.bcf", tmp_path)
    assert "1.74 keV unexplained (Si Ka1?" in result.stdout
    assert "add --elements Cu,O,Pd,Ti,Si" in result.stdout
    check_names_only_detected(saved)
    assert "continuum" in saved.phase_kinds  # a phase of no detected line says so
    assert saved.residual_peaks[0]["candidates"].startswith("Si_Ka1")
    # the file keeps what the summary said
    assert saved.phase_counts.shape == (3,) and np.all(saved.line_fraction <= 1)


def test_velox_file_warns_about_the_window_and_names_the_empty_phase(tmp_path):
    result, saved = decompose("velox_Test_SI_16x16_215kx.emd", tmp_path)
    assert "holds only 0.49 % of the counts" in result.output
    assert "99.5 % lie below" in result.output
    assert saved.window_share == pytest.approx(0.0049, abs=0.001)
    check_names_only_detected(saved)
    # with the vertex start no phase of this file need be empty; when one is, it says so
    if "empty" in saved.phase_kinds:
        assert "% of the abundance but has no counts" in result.output
