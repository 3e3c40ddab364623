"""The by-pixel nonzero storage of the fast backend: builders, types, errors."""

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

from espm_cli.solver import _sparse_data
from espm_cli.solver._sparse_data import PixelNonzeros, pixel_nonzeros_from_array


def _counts(n_pixels=37, n_channels=23, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(0.4, size=(n_pixels, n_channels))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float32, np.float64])
def test_dense_input_round_trips_with_compact_types(dtype):
    X = _counts().astype(dtype)
    nonzeros = pixel_nonzeros_from_array(X)
    np.testing.assert_array_equal(nonzeros.to_dense(), X.astype(np.float64))
    assert nonzeros.channel_index.dtype == np.uint16
    assert nonzeros.pixel_start.dtype == np.int64
    # Integer-valued counts are exact in float32 whatever the input type.
    assert nonzeros.counts.dtype == np.float32
    assert nonzeros.nnz == np.count_nonzero(X)
    assert np.all(nonzeros.counts > 0)


def test_inexact_float64_counts_stay_float64():
    X = _counts().astype(np.float64) * (1 + 1e-12)
    nonzeros = pixel_nonzeros_from_array(X)
    assert nonzeros.counts.dtype == np.float64
    np.testing.assert_array_equal(nonzeros.to_dense(), X)


def test_large_integer_counts_stay_exact():
    X = np.zeros((2, 3), dtype=np.int64)
    X[0, 1] = 2**24 + 1
    nonzeros = pixel_nonzeros_from_array(X)
    assert nonzeros.counts.dtype == np.float64
    assert nonzeros.counts[0] == 2**24 + 1


def test_many_channels_use_int32_indices():
    X = sp.random(3, 70000, density=1e-4, format="csr", random_state=0)
    nonzeros = pixel_nonzeros_from_array(X)
    assert nonzeros.channel_index.dtype == np.int32
    np.testing.assert_array_equal(nonzeros.to_dense(), X.toarray())


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_scipy_input_matches_dense(fmt):
    X = _counts(seed=1)
    matrix = sp.coo_matrix(X).asformat(fmt)
    nonzeros = pixel_nonzeros_from_array(matrix)
    np.testing.assert_array_equal(nonzeros.to_dense(), X)
    np.testing.assert_array_equal(
        nonzeros.pixel_start, np.concatenate([[0], np.cumsum(np.count_nonzero(X, axis=1))])
    )


def test_scipy_explicit_zeros_and_duplicates_are_cleaned():
    rows = np.array([0, 0, 1, 1])
    cols = np.array([2, 2, 0, 1])
    values = np.array([1.0, 2.0, 0.0, 4.0])
    nonzeros = pixel_nonzeros_from_array(sp.coo_matrix((values, (rows, cols)), shape=(2, 3)))
    np.testing.assert_array_equal(nonzeros.counts, [3.0, 4.0])
    np.testing.assert_array_equal(nonzeros.channel_index, [2, 1])


def test_dense_input_is_read_in_blocks(monkeypatch):
    monkeypatch.setattr(_sparse_data, "_TARGET_BLOCK_ENTRIES", 50)  # 2 pixels per block
    X = _counts(seed=2)
    nonzeros = pixel_nonzeros_from_array(X)
    np.testing.assert_array_equal(nonzeros.to_dense(), X)


def test_dask_input_is_read_block_by_block():
    X = _counts(seed=3).astype(np.uint16)
    lazy = da.from_array(X, chunks=(5, 7))
    nonzeros = pixel_nonzeros_from_array(lazy)
    np.testing.assert_array_equal(nonzeros.to_dense(), X)
    assert nonzeros.counts.dtype == np.float32


def test_pydata_sparse_input():
    sparse = pytest.importorskip("sparse")
    X = _counts(seed=4)
    nonzeros = pixel_nonzeros_from_array(sparse.COO.from_numpy(X))
    np.testing.assert_array_equal(nonzeros.to_dense(), X)


def test_totals():
    X = _counts(seed=5).astype(np.float64)
    nonzeros = pixel_nonzeros_from_array(X)
    assert nonzeros.total_counts() == pytest.approx(X.sum(), rel=1e-15)
    positive = X[X > 0]
    assert nonzeros.xlogx_minus_x() == pytest.approx(np.sum(positive * np.log(positive) - positive))
    assert isinstance(pixel_nonzeros_from_array(nonzeros), PixelNonzeros)


def test_empty_pixels_and_all_zero_input():
    X = np.zeros((4, 5))
    X[2, 3] = 1
    nonzeros = pixel_nonzeros_from_array(X)
    np.testing.assert_array_equal(nonzeros.pixel_start, [0, 0, 0, 1, 1])
    empty = pixel_nonzeros_from_array(np.zeros((3, 2)))
    assert empty.nnz == 0 and empty.n_pixels == 3


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[1.0, -1.0]]), "negative"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.ones(3), "2-D"),
        (np.array([["a"]]), "numbers"),
    ],
)
def test_bad_input_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        pixel_nonzeros_from_array(bad)


def test_bad_sparse_input_raises_value_error():
    with pytest.raises(ValueError, match="negative"):
        pixel_nonzeros_from_array(sp.csr_matrix(np.array([[0.0, -2.0]])))


def test_dask_chunks_side_by_side_keep_pixel_order():
    X = _counts(seed=6).astype(np.float64)
    nonzeros = pixel_nonzeros_from_array(da.from_array(X, chunks=(4, 5)))
    np.testing.assert_array_equal(nonzeros.to_dense(), X)
    assert np.all(np.diff(nonzeros.pixel_start) >= 0)


def test_dask_array_of_pydata_sparse_chunks():
    sparse = pytest.importorskip("sparse")
    X = _counts(seed=7).astype(np.uint16)
    lazy = da.from_array(sparse.COO.from_numpy(X), chunks=(10, 9), asarray=False)
    nonzeros = pixel_nonzeros_from_array(lazy)
    np.testing.assert_array_equal(nonzeros.to_dense(), X)


def test_pixel_totals_without_a_copy_of_the_counts():
    """The per-pixel sums the vertex start reads equal the sums of the counts, empty pixels
    and pixels across block boundaries included."""
    import scipy.sparse as sp

    from espm_cli.solver._numba_backend import prepare_counts

    rng = np.random.default_rng(3)
    X = rng.poisson(0.3, (5000, 40)).astype(np.float64)
    X[[0, 17, 2497, 2498, 2500, 4998, 4999]] = 0.0  # empty pixels, at the ends of the blocks too
    data = prepare_counts(sp.csr_matrix(X), np.float64)
    assert data.n_blocks > 1
    np.testing.assert_allclose(data.pixel_totals, X.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(data.pixel_totals, np.asarray(data.csr.sum(axis=0)).ravel(), rtol=1e-14)
