"""Data primitives of the general path: any β, masked pixels, masked entries.

X is held as CSR of its observed nonzeros, pixels x channels, in the compute dtype. The
data object owns its denominators: the loss statistics of the H step (P, Q of shape
(k, p)), of the W step (before the product with Gᵀ: shape (c, k)) and the divergence, all
taken over the observed entries only (weights M = pixel weight − missing entry). So a mask
changes them in this one place. See :mod:`espm_cli.solver.losses` for P and Q.

- β = 1 and β = 2 factorise: Σ M Y and Σ M Y² come from column sums, BᵀB and H Hᵀ, minus
  a correction over the missing entries only, and the data parts run over the nonzeros.
  Cost O(nnz·k + n_missing·k + (c + p)·k²).
- Any other β runs over blocks of pixels (about ``_BLOCK_ENTRIES`` entries of Y at a
  time), never a whole dense Y.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

from espm_cli.solver.losses import zero_entries_message

_BLOCK_ENTRIES = 1 << 19


@dataclass(frozen=True)
class MaskedCounts:
    """X (n_channels, n_pixels) under a β-divergence with missing entries.

    Attributes
    ----------
    counts : scipy.sparse.csr_array of shape (n_pixels, n_channels)
        Observed nonzero counts in the compute dtype (missing entries removed).
    beta : float
    pixel_weights : ndarray of shape (n_pixels,)
        1 for an observed pixel, 0 for a masked one (float64).
    missing : scipy.sparse.csr_array of shape (n_pixels, n_channels) or None
        1 at the missing entries of observed pixels.
    total : float
        Σ of the observed X.
    channel_totals : ndarray of shape (n_channels,)
    data_constant : float
        The data-only part of the divergence (Σ X^β, Σ X², or Σ log X for β = 0).
    n_observed : int
        Number of observed entries.
    counts_by_pixel_columns : scipy.sparse.csc_array or None
        The same counts in CSC layout (β = 2 only: its product with B is about twice as
        fast as the CSR one).
    """

    counts: object
    beta: float
    pixel_weights: np.ndarray
    missing: object
    total: float
    channel_totals: np.ndarray
    data_constant: float
    n_observed: int
    counts_by_pixel_columns: object = None

    @property
    def shape(self):
        """``(n_channels, n_pixels)``."""
        return self.counts.shape[::-1]

    @property
    def is_sparse(self):
        """Always True (the start reads ``csr``)."""
        return True

    @property
    def csr(self):
        """The observed counts as a sparse (n_channels, n_pixels) matrix."""
        return self.counts.T.tocsr()


def observed_counts(X, dtype=None, *, observed_pixels=None, missing=None):
    """X's observed nonzeros, the pixel weights and the missing entries, as CSR.

    The one place where masked pixels and entries are taken out of the counts: every
    backend that serves masks prepares its data from this.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_pixels, n_channels)
        Finite, nonnegative (missing entries may hold anything finite: they are dropped).
    dtype : numpy dtype or None
        Of the returned counts; None keeps X's.
    observed_pixels : ndarray of bool of shape (n_pixels,) or None
    missing : ndarray or sparse matrix of bool, shape (n_pixels, n_channels), or None

    Returns
    -------
    counts : scipy.sparse.csr_array (n_pixels, n_channels)
        Observed nonzeros (masked pixels' rows and missing entries removed), sorted indices.
    weights : ndarray of float64 (n_pixels,)
        1 for an observed pixel, 0 for a masked one.
    missing : scipy.sparse.csr_array of float64 or None
        1 at the missing entries of observed pixels (sorted indices).
    """
    if dtype is None:
        dtype = X.dtype
    counts = sp.csr_array(X, dtype=dtype) if sp.issparse(X) else sp.csr_array(np.asarray(X, dtype=dtype))
    counts.sum_duplicates()
    n_pixels = counts.shape[0]
    weights = np.ones(n_pixels) if observed_pixels is None else np.asarray(observed_pixels, np.float64)
    masked_pixel = None if observed_pixels is None else ~np.asarray(observed_pixels, bool)
    missing_csr = None
    if missing is not None:
        missing_csr = sp.csr_array(missing, dtype=bool)
        missing_csr.eliminate_zeros()
        missing_csr.sum_duplicates()
        if masked_pixel is not None:
            missing_csr = _without_rows(missing_csr, masked_pixel)
        missing_csr = sp.csr_array(
            (np.ones(missing_csr.nnz), missing_csr.indices, missing_csr.indptr), shape=missing_csr.shape
        )
        counts = counts - counts.multiply(missing_csr).astype(counts.dtype)
    if masked_pixel is not None:
        counts = _without_rows(counts, masked_pixel)
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts, weights, missing_csr


def _without_rows(matrix, rows):
    """A CSR matrix with the entries of the rows where ``rows`` is True removed."""
    per_row = np.diff(matrix.indptr)
    keep = np.repeat(~rows, per_row)
    indptr = np.zeros_like(matrix.indptr)
    np.cumsum(np.where(rows, 0, per_row), out=indptr[1:])
    return sp.csr_array((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def prepare_masked_counts(X, dtype, *, beta, observed_pixels=None, missing=None):
    """Turn X (n_pixels, n_channels) into :class:`MaskedCounts`.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_pixels, n_channels)
        Finite, nonnegative (missing entries may hold anything finite: they are dropped).
    dtype : numpy dtype
    beta : float
    observed_pixels : ndarray of bool of shape (n_pixels,) or None
    missing : ndarray or sparse matrix of bool, shape (n_pixels, n_channels), or None
        Missing entries (inside observed pixels or not).

    Returns
    -------
    MaskedCounts

    Raises
    ------
    ValueError
        β ≤ 0 with zeros among the observed entries.
    """
    counts, weights, missing_csr = observed_counts(X, dtype, observed_pixels=observed_pixels, missing=missing)
    n_pixels, n_channels = counts.shape
    n_missing = 0 if missing_csr is None else missing_csr.nnz
    n_observed = int(weights.sum()) * n_channels - n_missing
    values = counts.data.astype(np.float64)
    if beta <= 0 and counts.nnz < n_observed:
        raise ValueError(zero_entries_message(beta, n_observed - counts.nnz))
    if beta == 0.0:
        constant = float(np.sum(np.log(values)))
    elif beta == 1.0:
        constant = float(np.sum(xlogy(values, values)))
    else:
        constant = float(np.sum(values**beta))
    channel_totals = np.bincount(counts.indices, weights=values, minlength=n_channels)
    return MaskedCounts(
        counts=counts,
        beta=float(beta),
        pixel_weights=weights,
        missing=missing_csr,
        total=float(values.sum()),
        channel_totals=channel_totals,
        data_constant=constant,
        n_observed=n_observed,
        counts_by_pixel_columns=counts.tocsc() if beta == 2.0 else None,
    )


def _model_at(matrix, B, H):
    """Y = B H at the stored entries of a (p x c) sparse matrix, in CSR order."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    Bt = np.ascontiguousarray(B.T)
    # One component at a time: gathers from contiguous rows (k is small), much faster
    # than an einsum over gathered (nnz, k) blocks.
    model = Bt[0][matrix.indices] * H[0][rows]
    for q in range(1, H.shape[0]):
        model += Bt[q][matrix.indices] * H[q][rows]
    return model, rows


def _power_in_place(values, exponent):
    """``values ** exponent`` written over ``values``, cheap forms for common exponents."""
    if exponent == 0.5:
        return np.sqrt(values, out=values)
    if exponent == -0.5:
        return np.reciprocal(np.sqrt(values, out=values), out=values)
    if exponent == -1.0:
        return np.reciprocal(values, out=values)
    if exponent == 2.0:
        return np.multiply(values, values, out=values)
    return np.power(values, exponent, out=values)


def _with_values(matrix, values):
    return sp.csr_array((values, matrix.indices, matrix.indptr), shape=matrix.shape)


def statistics(data, B, H, *, for_H=False, for_W=False, loss=False):
    """The loss statistics at (B = G W, H) over the observed entries.

    Parameters
    ----------
    data : MaskedCounts
    B : ndarray of shape (c, k)
    H : ndarray of shape (k, p)
    for_H, for_W, loss : bool
        Which of the results to compute (one pass gives all of them).

    Returns
    -------
    dict
        ``"P_H", "Q_H"`` (k, p) where ``for_H``; ``"P_W", "Q_W"`` (c, k), to be multiplied
        by Gᵀ, where ``for_W``; ``"divergence"`` (float) where ``loss``.
    """
    if data.beta == 1.0:
        return _kl_statistics(data, B, H, for_H, for_W, loss)
    if data.beta == 2.0:
        return _frobenius_statistics(data, B, H, for_H, for_W, loss)
    return _block_statistics(data, B, H, for_H, for_W, loss)


def _kl_statistics(data, B, H, for_H, for_W, loss):
    out = {}
    counts, missing, n = data.counts, data.missing, data.pixel_weights.astype(H.dtype)
    model, _ = _model_at(counts, B, H)
    ratio = counts.data / model
    ratio_matrix = _with_values(counts, ratio)
    b = B.sum(axis=0, dtype=np.float64).astype(B.dtype)
    if for_H:
        P = b[:, None] * n[None, :]
        if missing is not None:
            P = P - (missing @ B).T
        out["P_H"], out["Q_H"] = P, (ratio_matrix @ B).T
    if for_W:
        P = np.broadcast_to(H @ n, (counts.shape[1], H.shape[0])).copy()
        if missing is not None:
            P -= missing.T @ H.T
        out["P_W"], out["Q_W"] = P, ratio_matrix.T @ H.T
    if loss:
        model_total = float(b.astype(np.float64) @ (H.astype(np.float64) @ data.pixel_weights))
        if missing is not None:
            model_total -= float(np.sum(_model_at(missing, B, H)[0], dtype=np.float64))
        log_model = float(np.sum(xlogy(counts.data.astype(np.float64), model.astype(np.float64))))
        out["divergence"] = model_total - data.total + data.data_constant - log_model
    return out


def _frobenius_statistics(data, B, H, for_H, for_W, loss):
    out = {}
    counts, missing, n = data.counts, data.missing, data.pixel_weights.astype(H.dtype)
    gram = B.T @ B
    weighted_H = H * n[None, :]
    missing_model = None
    if missing is not None:
        missing_model = _with_values(missing, _model_at(missing, B, H)[0])
    data_part = (data.counts_by_pixel_columns @ B).T  # Bᵀ X, (k, p)
    if for_H:
        P = gram @ weighted_H
        if missing_model is not None:
            P = P - (missing_model @ B).T
        out["P_H"], out["Q_H"] = P, data_part
    if for_W:
        P = B @ (weighted_H @ H.T)
        if missing_model is not None:
            P = P - missing_model.T @ H.T
        out["P_W"], out["Q_W"] = P, counts.T @ H.T
    if loss:
        H64, B64 = H.astype(np.float64), B.astype(np.float64)
        model_square = float(np.sum((B64.T @ B64) * ((H64 * data.pixel_weights) @ H64.T)))
        if missing_model is not None:
            model_square -= float(np.sum(missing_model.data.astype(np.float64) ** 2))
        # Σ X Y = Σ_kj (Bᵀ X)_kj H_kj: no pass over the nonzeros of its own.
        cross = float(np.sum(data_part.astype(np.float64) * H64))
        out["divergence"] = 0.5 * data.data_constant - cross + 0.5 * model_square
    return out


def _block_statistics(data, B, H, for_H, for_W, loss):
    beta = data.beta
    counts, missing = data.counts, data.missing
    n_pixels, n_channels = counts.shape
    k = H.shape[0]
    for_H = for_H or loss  # the loss sums come from the H statistics (below)
    step = max(1, _BLOCK_ENTRIES // n_channels)
    P_H = np.empty((k, n_pixels), H.dtype) if for_H else None
    Q_H = np.empty((k, n_pixels), H.dtype) if for_H else None
    P_W = np.zeros((n_channels, k), H.dtype) if for_W else None
    Q_W = np.zeros((n_channels, k), H.dtype) if for_W else None
    weights = data.pixel_weights.astype(H.dtype)
    every_pixel = bool(np.all(data.pixel_weights == 1))
    log_model = 0.0
    Bt = np.ascontiguousarray(B.T)
    for start in range(0, n_pixels, step):
        block = slice(start, min(n_pixels, start + step))
        H_block = H[:, block]
        model = H_block.T @ Bt  # (pixels, channels)
        observed = counts[block]
        rows = np.repeat(np.arange(observed.shape[0]), np.diff(observed.indptr))
        model_at_counts = model[rows, observed.indices]
        gaps = None
        if missing is not None:
            gaps = missing[block]
            gap_rows = np.repeat(np.arange(gaps.shape[0]), np.diff(gaps.indptr))
        if loss and beta == 0.0:  # Σ M log Y
            logs = np.log(model, dtype=np.float64)
            if not every_pixel:
                logs *= data.pixel_weights[block, None]
            log_model += float(logs.sum())
            if gaps is not None:
                log_model -= float(logs[gap_rows, gaps.indices].sum())
        # M Y^(β−1) (dense: every observed entry; the mask zeroes rows and single entries)
        # and M X Y^(β−2) = (X / Y) M Y^(β−1) (sparse: only where X > 0): the two
        # statistics of docs/solver.md.
        power = _power_in_place(model, beta - 1.0)
        if not every_pixel:
            power *= weights[block, None]
        if gaps is not None:
            power[gap_rows, gaps.indices] = 0.0
        power_at_counts = power[rows, observed.indices]
        data_power = _with_values(observed, observed.data / model_at_counts * power_at_counts)
        if for_H:
            P_H[:, block] = (power @ B).T
            Q_H[:, block] = (data_power @ B).T
        if for_W:
            P_W += power.T @ H_block.T
            Q_W += data_power.T @ H_block.T
    out = {}
    if for_H:
        out["P_H"], out["Q_H"] = P_H, Q_H
    if for_W:
        out["P_W"], out["Q_W"] = P_W, Q_W
    if loss:
        # Σ M Y^β = Σ_kj P_kj H_kj and Σ M X Y^(β−1) = Σ_kj Q_kj H_kj (as Y = B H).
        H64 = H.astype(np.float64)
        model_power = float(np.sum(P_H.astype(np.float64) * H64))
        cross = float(np.sum(Q_H.astype(np.float64) * H64))
        if beta == 0.0:  # Σ M (x/y − log x + log y − 1)
            out["divergence"] = cross - data.data_constant + log_model - data.n_observed
        else:
            out["divergence"] = (data.data_constant + (beta - 1.0) * model_power - beta * cross) / (
                beta * (beta - 1.0)
            )
    return out
