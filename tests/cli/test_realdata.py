"""espm info and decompose on the real files in ../shared/realdata (skipped when absent)."""

from pathlib import Path

import pytest

from espm_cli.cli.main import cli
from espm_cli.io import read_result

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
FILES = {
    "30x30_instructively_packed_16bit_compressed.bcf": ("30 x 30", "2048 channels"),
    "88_ES-LP_G8_selection2_cropped2.hspy": ("80 x 80", "1917 channels"),
    "Hitachi_TM3030Plus.bcf": ("240 x 320", "2048 channels"),
    "View000_0000006.pts": ("512 x 512", "4096 channels"),
    "bcf_v2_50x50px.bcf": ("50 x 50", "2048 channels"),
    "test_TEM.bcf": ("64 x 64", "2048 channels"),
    "velox_Test_SI_16x16_215kx.emd": ("16 x 16", "4096 channels"),
}

pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason="no ../shared/realdata")


@pytest.mark.parametrize("name", sorted(FILES))
def test_info_on_every_real_file(runner, name):
    result = runner.invoke(cli, ["info", str(REALDATA / name)])
    assert result.exit_code == 0, result.output
    for fragment in FILES[name]:
        assert fragment in result.stdout
    if name == "View000_0000006.pts":
        # 512 x 512 x 4096 held as sparse integer counts, and its missing elements named
        assert "sparse in memory" in result.stdout and "dtype uint8" in result.stdout
        assert "required: give --elements" in result.stdout


def test_decompose_bruker_tem_file(runner, tmp_path):
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(REALDATA / "test_TEM.bcf"),
            "-k",
            "2",
            "--max-iter",
            "5",
            "-o",
            str(tmp_path),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = read_result(tmp_path / "test_TEM.h5")
    assert saved.elements == ["Cu", "O", "Pd", "Ti"]
    assert saved.maps.shape == (2, 64, 64) and saved.n_iter <= 5
    assert saved.acquisition["beam_energy_keV"] == 200.0
    assert saved.acquisition["elevation_deg"] == 18.0
    assert saved.pixel_unit == "µm"
    assert "test_TEM.bcf: 64 x 64 pixels" in result.stdout


def test_decompose_velox_emd_picks_the_spectrum_image(runner, tmp_path):
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(REALDATA / "velox_Test_SI_16x16_215kx.emd"),
            "-k",
            "2",
            "--max-iter",
            "5",
            "-o",
            str(tmp_path),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = read_result(tmp_path / "velox_Test_SI_16x16_215kx.h5")
    assert saved.maps.shape == (2, 16, 16)
    assert saved.acquisition["beam_energy_keV"] == 300.0


def test_jeol_without_elements_is_refused_with_advice(runner, tmp_path):
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(REALDATA / "View000_0000006.pts"),
            "--crop",
            "0",
            "0",
            "64",
            "64",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "lists no elements" in result.output and "--elements" in result.output
    assert list(tmp_path.iterdir()) == []


def test_decompose_big_sparse_jeol_file_binned(runner, tmp_path):
    """512 x 512 x 4096 JEOL counts, read as sparse integers, binned 4 x 4, few iterations."""
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(REALDATA / "View000_0000006.pts"),
            "--elements",
            "C,O,Si,Fe,Cu",
            "--bin",
            "4",
            "-k",
            "2",
            "--max-iter",
            "3",
            "-o",
            str(tmp_path),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = read_result(tmp_path / "View000_0000006.h5")
    assert saved.maps.shape == (2, 128, 128)
    assert saved.pixel_size == pytest.approx(4 * 0.0086914, rel=1e-4)
    assert saved.acquisition["processing"]["bin_factor"] == 4
    assert saved.acquisition["mnka_fwhm_eV"] == pytest.approx(138.0)
