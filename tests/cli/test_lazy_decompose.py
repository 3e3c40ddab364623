"""espm decompose --lazy: the file read block by block during the fit, the same result."""

import numpy as np
import pytest

from espm_cli.cli.main import cli
from espm_cli.io import load_spectrum_image, read_result

FAST = ["--max-iter", "15", "-q", "--overwrite"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("extra", [[], ["--bin", "2", "--crop", "1", "2", "12", "10"]])
def test_lazy_decompose_gives_the_in_memory_result(runner, small_image, tmp_path, extra):
    image, _ = small_image
    results = []
    for flags in ([], ["--lazy"]):
        folder = tmp_path / ("lazy" if flags else "eager")
        outcome = runner.invoke(cli, ["decompose", str(image), "-o", str(folder), *FAST, *extra, *flags])
        assert outcome.exit_code == 0, outcome.output
        results.append(read_result(folder / "small.h5"))
    eager, lazy = results
    np.testing.assert_allclose(lazy.W, eager.W, rtol=1e-10)
    np.testing.assert_allclose(lazy.maps, eager.maps, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lazy.loss_history, eager.loss_history, rtol=1e-10)
    np.testing.assert_allclose(lazy.mean_spectrum, eager.mean_spectrum, rtol=1e-12)


def test_lazy_image_holds_a_dask_array_and_the_same_totals(small_image):
    image, _ = small_image
    eager = load_spectrum_image(image, bin_factor=2, energy_range=(1.0, 4.0))
    lazy = load_spectrum_image(image, bin_factor=2, energy_range=(1.0, 4.0), lazy=True)
    assert lazy.is_lazy and not eager.is_lazy
    assert lazy.counts.shape == eager.counts.shape and lazy.shape_2d == eager.shape_2d
    np.testing.assert_array_equal(
        np.asarray(lazy.counts), eager.counts.toarray() if eager.is_sparse else eager.counts
    )
    assert lazy.nnz == eager.nnz and lazy.total_counts == eager.total_counts
    np.testing.assert_allclose(lazy.counts_per_pixel(), eager.counts_per_pixel())
