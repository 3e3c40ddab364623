"""SmoothNMF.fit on a dask array: the fit of the computed array, read block by block."""

import threading
import weakref

import numpy as np
import pytest

from espm_cli.solver import SmoothNMF
from espm_cli.solver.blocks import lazy_counts, row_blocks

da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

from solver_helpers import gaussian_peak_matrix  # noqa: E402

SHAPE_2D = (12, 10)
N_CHANNELS = 40


def _counts(seed=0):
    rng = np.random.default_rng(seed)
    G, continuum = gaussian_peak_matrix(N_CHANNELS, centres=[6.0, 17.0, 30.0], width=2.0)
    W = rng.uniform(0.2, 1.0, (G.shape[1], 3))
    H = rng.dirichlet(np.ones(3), SHAPE_2D[0] * SHAPE_2D[1]).T
    X = rng.poisson(4.0 * (G @ W @ H)).T  # sparse-ish integer counts
    return X.astype(np.uint16), G, continuum


class _RecordingSource:
    """Makes each chunk of X on demand; records which were made and how many lived at once."""

    def __init__(self, X):
        self.X = X
        self.calls = []
        self.alive = self.most_alive = 0
        self._lock = threading.Lock()

    def _dropped(self):
        with self._lock:
            self.alive -= 1

    def chunk(self, block_id=None, block_info=None):
        (row_start, row_stop), (col_start, col_stop) = block_info[None]["array-location"]
        block = self.X[row_start:row_stop, col_start:col_stop].copy()
        with self._lock:
            self.calls.append(block_id)
            self.alive += 1
            self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(block, self._dropped)
        return block


def _recorded_array(X, chunks):
    source = _RecordingSource(X)
    array = da.map_blocks(source.chunk, dtype=X.dtype, chunks=chunks, meta=np.empty((0, 0), X.dtype))
    return array, source


def _options(G, continuum):
    return dict(
        G=G,
        G_continuum=continuum,
        lambda_L=1.5,
        mu=0.05,
        shape_2d=SHAPE_2D,
        simplex="H",
        max_iter=25,
        tol=0.0,
        random_state=0,
    )


@pytest.mark.parametrize("chunks", [((30, 30, 30, 30), (40,)), ((50, 50, 20), (15, 25))])
def test_fit_of_a_dask_array_equals_the_fit_of_the_numpy_array(chunks):
    X, G, continuum = _counts()
    lazy, source = _recorded_array(X, chunks)
    eager = SmoothNMF(3, **_options(G, continuum)).fit(X)
    fitted = SmoothNMF(3, **_options(G, continuum)).fit(lazy)
    np.testing.assert_allclose(fitted.W_, eager.W_, rtol=1e-10, atol=0)
    np.testing.assert_allclose(fitted.H_, eager.H_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fitted.losses_, eager.losses_, rtol=1e-10, atol=0)
    # never dense: every chunk made exactly once, at most one row of chunks held at a time
    n_chunks = len(chunks[0]) * len(chunks[1])
    assert len(source.calls) == n_chunks
    assert len(set(source.calls)) == n_chunks
    assert source.most_alive <= len(chunks[1])


def test_the_chunk_record_sees_a_densified_array():
    """The record above would catch a dense copy: computing the whole array holds every chunk."""
    X, _, _ = _counts()
    lazy, source = _recorded_array(X, ((30, 30, 30, 30), (20, 20)))
    np.asarray(lazy)
    assert source.most_alive == 8


def test_transform_of_a_dask_array_equals_the_numpy_transform():
    X, G, continuum = _counts(1)
    estimator = SmoothNMF(3, **{**_options(G, continuum), "max_iter": 10}).fit(X)
    lazy, source = _recorded_array(X, ((60, 60), (40,)))
    np.testing.assert_allclose(estimator.transform(lazy), estimator.transform(X), rtol=1e-10, atol=1e-14)
    assert len(source.calls) == 2


def test_lazy_counts_keeps_only_the_nonzeros_and_missing_entries():
    X, _, _ = _counts(2)
    X = X.astype(np.float64)
    X[3, 5] = np.nan
    csr = lazy_counts(da.from_array(X, chunks=(25, 16)))
    assert csr.nnz == np.count_nonzero(X)  # NaN is stored (a missing entry), zeros are not
    np.testing.assert_array_equal(np.isnan(csr.toarray()), np.isnan(X))
    np.testing.assert_array_equal(np.nan_to_num(csr.toarray()), np.nan_to_num(X))


def test_nan_in_a_dask_array_is_missing_data_as_in_numpy():
    X, G, continuum = _counts(3)
    X = X.astype(np.float64)
    X[7, 2] = np.nan
    options = {**_options(G, continuum), "max_iter": 8}
    eager = SmoothNMF(3, **options).fit(X)
    fitted = SmoothNMF(3, **options).fit(da.from_array(X, chunks=(40, 40)))
    assert fitted.missing_summary_["nan_entries"] == 1
    np.testing.assert_allclose(fitted.W_, eager.W_, rtol=1e-10)


@pytest.mark.parametrize("value, message", [(-1.0, "negative"), (np.inf, "infinity")])
def test_bad_values_in_a_dask_array_are_refused_as_in_numpy(value, message):
    X, G, continuum = _counts(4)
    X = X.astype(np.float64)
    X[5, 5] = value
    with pytest.raises(ValueError, match=message):
        SmoothNMF(3, **_options(G, continuum)).fit(da.from_array(X, chunks=(40, 40)))


def test_a_3d_dask_array_is_refused_with_the_reshape_to_use():
    with pytest.raises(ValueError, match="2-D"):
        SmoothNMF(2).fit(da.ones((4, 5, 6), chunks=2))


def test_row_blocks_cover_the_rows_in_order():
    assert row_blocks((7, 3), 3) == [(0, 3), (3, 6), (6, 7)]
    assert row_blocks((2, 3), 5) == [(0, 2)]
