"""The data matrix in the orientation the solver works in: channels x pixels.

The estimator receives X as (n_pixels, n_channels) (hyperspy and scikit-learn); the
updates read it as (n_channels, n_pixels). A dense X is copied once to the compute dtype;
a sparse X is kept as CSR of its nonzeros, so the KL terms only touch those.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class CountData:
    """X (n_channels, n_pixels) prepared for the update steps.

    Attributes
    ----------
    dense : ndarray of shape (n_channels, n_pixels) or None
        The counts in the compute dtype when X came dense.
    csr : scipy.sparse.csr_array of shape (n_channels, n_pixels) or None
        The nonzero counts when X came sparse (explicit zeros removed).
    rows, cols : ndarray of int or None
        Channel and pixel index of each stored nonzero of ``csr``, in storage order.
    total : float
        Σ X, in float64.
    channel_totals : ndarray of shape (n_channels,)
        Σ_j X_ij, in float64.
    """

    dense: object
    csr: object
    rows: object
    cols: object
    total: float
    channel_totals: np.ndarray

    @property
    def shape(self):
        """``(n_channels, n_pixels)``."""
        return (self.dense if self.dense is not None else self.csr).shape

    @property
    def is_sparse(self):
        """Whether the nonzeros are stored as CSR."""
        return self.csr is not None


def prepare_counts(X, dtype):
    """Turn X (n_pixels, n_channels) into :class:`CountData` (channels x pixels).

    Parameters
    ----------
    X : array-like or scipy sparse matrix of shape (n_pixels, n_channels)
        Validated counts (finite, nonnegative).
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    CountData
    """
    if sp.issparse(X):
        csr = sp.csr_array(X.T, dtype=dtype)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        csr.sort_indices()
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        channel_totals = np.bincount(rows, weights=csr.data.astype(np.float64), minlength=csr.shape[0])
        return CountData(
            dense=None,
            csr=csr,
            rows=rows,
            cols=csr.indices,
            total=float(csr.data.sum(dtype=np.float64)),
            channel_totals=channel_totals,
        )
    dense = np.asarray(X).T.astype(dtype)
    channel_totals = dense.sum(axis=1, dtype=np.float64)
    return CountData(
        dense=dense,
        csr=None,
        rows=None,
        cols=None,
        total=float(channel_totals.sum()),
        channel_totals=channel_totals,
    )
