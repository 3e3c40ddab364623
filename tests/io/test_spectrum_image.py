import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from io_helpers import write_eds_hspy

from espm_cli.io import SpectrumImageError, load_spectrum_image
from espm_cli.io import spectrum_image as spectrum_image_module

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"


def dense(counts):
    return counts.toarray() if scipy.sparse.issparse(counts) else np.asarray(counts)


def test_load_keeps_integer_counts_in_pixel_order(eds_file):
    path, data = eds_file
    image = load_spectrum_image(path)
    assert image.shape_2d == (6, 8)
    assert image.counts.dtype.kind == "u"
    np.testing.assert_array_equal(dense(image.counts), data.reshape(48, 50))
    np.testing.assert_allclose(image.energy[:2], [0.1, 0.12])
    assert image.pixel_size == 2.5 and image.pixel_unit == "nm"
    assert image.acquisition.elements == ("Fe", "O")
    assert image.acquisition.beam_energy_keV == 200.0
    assert image.acquisition.elevation_deg == 22.0
    assert image.acquisition.tilt_deg == 5.0
    assert "thickness_nm" in image.acquisition.missing()
    assert "elements" not in image.acquisition.missing()


def test_crop_bin_and_energy_range(eds_file):
    path, data = eds_file
    image = load_spectrum_image(path, crop=(1, 2, 6, 4), bin_factor=2, energy_range=(0.2, 0.5))
    # crop x 1..7, y 2..6; channels with energy 0.2..0.5 -> 5..20
    window = data[2:6, 1:7, 5:21].astype(np.int64)
    expected = window.reshape(2, 2, 3, 2, 16).sum(axis=(1, 3)).reshape(6, 16)
    assert image.shape_2d == (2, 3)
    np.testing.assert_array_equal(dense(image.counts), expected)
    assert image.energy[0] == pytest.approx(0.2)
    assert image.energy[-1] == pytest.approx(0.5)
    assert image.pixel_size == 5.0


def test_sparse_when_few_nonzeros_and_dense_otherwise(tmp_path, monkeypatch):
    path, _ = write_eds_hspy(tmp_path / "a.hspy")
    assert load_spectrum_image(path).is_sparse  # Poisson(0.3): ~26 % nonzero
    monkeypatch.setattr(spectrum_image_module, "DENSE_NONZERO_FRACTION", 0.1)
    assert not load_spectrum_image(path).is_sparse


def test_reads_in_blocks_of_rows(eds_file, monkeypatch):
    path, data = eds_file
    monkeypatch.setattr(spectrum_image_module, "READ_BLOCK_BYTES", 1)
    image = load_spectrum_image(path, bin_factor=3)
    expected = data[:6, :6].astype(np.int64).reshape(2, 3, 2, 3, 50).sum(axis=(1, 3)).reshape(4, 50)
    np.testing.assert_array_equal(dense(image.counts), expected)


def test_line_scan_is_one_row(tmp_path):
    path, data = write_eds_hspy(tmp_path / "line.hspy", shape=(7, 30))
    image = load_spectrum_image(path)
    assert image.shape_2d == (1, 7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bin_factor": 9}, "bin_factor 9"),
        ({"bin_factor": 0}, "bin_factor 0"),
        ({"crop": (0, 0, 9, 2)}, "crop"),
        ({"energy_range": (5.0, 6.0)}, "outside the energy axis"),
        ({"energy_range": (0.5, 0.2)}, "LOW < HIGH"),
    ],
)
def test_bad_processing_options(eds_file, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_spectrum_image(eds_file[0], **kwargs)


def test_refuses_single_spectrum_images_and_junk(tmp_path):
    import hyperspy.api as hs

    single, _ = write_eds_hspy(tmp_path / "single.hspy", shape=(40,))
    with pytest.raises(SpectrumImageError, match="single spectrum"):
        load_spectrum_image(single)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs.signals.Signal2D(np.zeros((5, 5))).save(tmp_path / "image.hspy")
    with pytest.raises(SpectrumImageError, match="only images"):
        load_spectrum_image(tmp_path / "image.hspy")
    (tmp_path / "junk.hspy").write_text("not hdf5")
    with pytest.raises(SpectrumImageError, match="cannot read junk.hspy"):
        load_spectrum_image(tmp_path / "junk.hspy")
    with pytest.raises(SpectrumImageError, match="file not found"):
        load_spectrum_image(tmp_path / "missing.hspy")


@pytest.mark.skipif(not REALDATA.is_dir(), reason="no ../shared/realdata")
def test_bcf_gives_the_spectrum_image():
    image = load_spectrum_image(REALDATA / "test_TEM.bcf")
    assert image.shape_2d == (64, 64) and image.n_channels == 2048
    assert image.is_sparse and image.counts.dtype == np.uint8
    assert image.acquisition.elements == ("Cu", "O", "Pd", "Ti")
    assert image.acquisition.microscope == "TEM"
