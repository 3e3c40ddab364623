"""Reference update steps of SmoothNMF: clear numpy, correct above all.

Pure module-level functions; a faster backend must reproduce them (same arguments, same
results up to rounding). Shapes: X (c, p) inside :class:`~espm_cli.solver.counts.CountData`,
G (c, m), W (m, k), H (k, p). The maths is derived in docs/solver.md.
"""

import numpy as np
from scipy.special import xlogy

from espm_cli.solver.constraints import multiplicative_w_update, quadratic_update
from espm_cli.solver.grid import grid_degrees, laplacian_energy, neighbour_sum


def count_ratio(data, B, H):
    """X / (B H), only where X is nonzero.

    Parameters
    ----------
    data : CountData
    B : ndarray of shape (c, k)
        ``G @ W``.
    H : ndarray of shape (k, p)

    Returns
    -------
    ndarray of shape (c, p) (dense X) or ndarray of shape (nnz,) (sparse X, in CSR order)
    """
    if data.is_sparse:
        model = np.einsum("nk,kn->n", B[data.rows], H[:, data.cols])
        return data.csr.data / model
    model = B @ H
    return np.divide(data.dense, model, out=np.zeros_like(model), where=data.dense > 0)


def _ratio_times_H_transpose(data, ratio, H):
    """(X / Y) @ Hᵀ, shape (c, k)."""
    if data.is_sparse:
        csr = data.csr.__class__((ratio, data.csr.indices, data.csr.indptr), shape=data.shape)
        return csr @ H.T
    return ratio @ H.T


def _B_transpose_times_ratio(data, ratio, B):
    """Bᵀ @ (X / Y), shape (k, p)."""
    if data.is_sparse:
        csr = data.csr.__class__((ratio, data.csr.indices, data.csr.indptr), shape=data.shape)
        return (csr.T @ B).T
    return B.T @ ratio


def sparsity_weights(mu, k):
    """mu as a new float64 vector of length k (zeros when None)."""
    return np.zeros(k) if mu is None else np.array(np.broadcast_to(np.asarray(mu, dtype=np.float64), (k,)))


def regularisation_terms(H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The two regulariser terms of F, in float64: Laplacian and log sparsity.

    Shared by every backend (they cost O(k p), nothing to fuse).

    Parameters
    ----------
    H : ndarray of shape (k, p)
    shape_2d, lambda_L, mu, epsilon_reg
        As in :func:`h_step`.

    Returns
    -------
    laplacian, log_sparsity : float
        ``(lambda_L/2) tr(H Δ Hᵀ)`` and ``Σ_kp mu_k log(H_kp + epsilon_reg)``.
    """
    laplacian = 0.0
    if lambda_L > 0 and shape_2d is not None:
        laplacian = 0.5 * lambda_L * laplacian_energy(H, shape_2d)
    mu = sparsity_weights(mu, H.shape[0])
    log_sparsity = 0.0
    if np.any(mu > 0):
        log_sparsity = float(mu @ np.sum(np.log(H.astype(np.float64, copy=False) + epsilon_reg), axis=1))
    return laplacian, log_sparsity


def h_step(
    data,
    G,
    W,
    H,
    *,
    shape_2d=None,
    lambda_L=0.0,
    mu=None,
    epsilon_reg=1.0,
    simplex=False,
    fixed=None,
    eps=1e-10,
):
    """One majorize-minimize update of H with W fixed.

    Parameters
    ----------
    data : CountData
        X as channels x pixels.
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
    H : ndarray of shape (k, p)
        Current abundances, all entries > 0 (feasible when ``simplex``).
    shape_2d : tuple of int or None
        Pixel grid for the Laplacian; None means no Laplacian term.
    lambda_L : float
        Laplacian weight (the term is ``(lambda_L / 2) tr(H Δ Hᵀ)``).
    mu : ndarray of shape (k,) or None
        Sparsity weight per component.
    epsilon_reg : float
        ε_r in ``log(H + ε_r)``.
    simplex : bool
        Whether every pixel's abundances sum to 1.
    fixed : ndarray of shape (k, p) or None
        Entries >= 0 are held at that value; negative entries are free.
    eps : float
        Lower bound of every free entry.

    Returns
    -------
    ndarray of shape (k, p), dtype of H
        The updated H; F(W, H_new) <= F(W, H).
    """
    k = H.shape[0]
    B = G @ W
    b = B.sum(axis=0, dtype=np.float64).astype(H.dtype)
    ratio = count_ratio(data, B, H)
    numerator = H * _B_transpose_times_ratio(data, ratio, B)
    beta = np.broadcast_to(b[:, None], H.shape)
    mu = sparsity_weights(mu, k)
    if np.any(mu > 0):
        beta = beta + mu.astype(H.dtype)[:, None] / (H + epsilon_reg)
    if lambda_L > 0 and shape_2d is not None:
        a = (0.5 * lambda_L * grid_degrees(shape_2d)).astype(H.dtype)[None, :]
        c = numerator + lambda_L * H * neighbour_sum(H, shape_2d)
    else:
        a = np.zeros((1, 1), dtype=H.dtype)
        c = numerator
    return quadratic_update(a, beta, c, fixed=fixed, simplex=simplex, eps=eps, dtype=H.dtype)


def w_step(data, G, W, H, *, simplex_rows=None, fixed=None, eps=1e-10):
    """One majorize-minimize (multiplicative) update of W with H fixed.

    Parameters
    ----------
    data : CountData
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
        Current weights, all entries > 0 (feasible when ``simplex_rows`` is given).
    H : ndarray of shape (k, p)
    simplex_rows : ndarray of bool, shape (m,), or None
        Rows of W (the element columns of G) whose entries sum to 1 in every phase;
        None means no simplex constraint.
    fixed : ndarray of shape (m, k) or None
        Entries >= 0 are held at that value; negative entries are free.
    eps : float
        Lower bound of every free entry.

    Returns
    -------
    ndarray of shape (m, k), dtype of W
        The updated W; F(W_new, H) <= F(W, H).
    """
    B = G @ W
    ratio = count_ratio(data, B, H)
    numerator = W * (G.T @ _ratio_times_H_transpose(data, ratio, H))
    column_sums = G.sum(axis=0, dtype=np.float64)
    row_sums = H.sum(axis=1, dtype=np.float64)
    denominator = np.outer(column_sums, row_sums).astype(W.dtype)
    return multiplicative_w_update(
        numerator, denominator, simplex_rows=simplex_rows, fixed=fixed, eps=eps
    ).astype(W.dtype, copy=False)


def objective_terms(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The three terms of F, in float64: KL divergence, Laplacian, log sparsity.

    Parameters
    ----------
    data : CountData
    G, W, H : ndarray
    shape_2d, lambda_L, mu, epsilon_reg
        As in :func:`h_step`.

    Returns
    -------
    ndarray of shape (3,), float64
        ``[KL(X || GWH), (lambda_L/2) tr(H Δ Hᵀ), Σ_kp mu_k log(H_kp + epsilon_reg)]``.
    """
    B = G @ W
    ratio = count_ratio(data, B, H)
    counts = data.csr.data if data.is_sparse else data.dense
    model_total = float(B.sum(axis=0, dtype=np.float64) @ H.sum(axis=1, dtype=np.float64))
    kl = model_total - data.total + float(np.sum(xlogy(counts, ratio), dtype=np.float64))
    laplacian, log_sparsity = regularisation_terms(
        H, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg
    )
    return np.array([kl, laplacian, log_sparsity])
