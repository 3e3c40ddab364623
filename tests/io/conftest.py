import pytest
from io_helpers import write_eds_hspy


@pytest.fixture
def eds_file(tmp_path):
    return write_eds_hspy(tmp_path / "scan.hspy")
