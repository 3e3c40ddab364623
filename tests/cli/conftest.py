import shutil

import pytest
from cli_helpers import write_small_simulation
from click.testing import CliRunner


@pytest.fixture(scope="session")
def small_image_master(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    return write_small_simulation(folder / "small.hspy")


@pytest.fixture
def small_image(small_image_master, tmp_path):
    """A private copy of the small simulated image (and its truth) in tmp_path."""
    image, truth = small_image_master
    shutil.copy(image, tmp_path / image.name)
    shutil.copy(truth, tmp_path / truth.name)
    return tmp_path / image.name, tmp_path / truth.name


@pytest.fixture
def runner():
    return CliRunner()
