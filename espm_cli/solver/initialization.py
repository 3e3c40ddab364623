"""Starting points for SmoothNMF: NNDSVD-a, random, or given; then made feasible.

With a physics G the starting spectra (channels x k) are projected onto G by a few KL
multiplicative iterations of W with G fixed. Every start is then scaled to the data's total
counts and projected onto the constraints (bounds, fixed entries, simplex), because the
monotone updates need a feasible start.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

_PROJECTION_ITERATIONS = 50


def nndsvda(X, n_components, rng):
    """NNDSVD with zeros filled by the mean (Boutsidis & Gallopoulos 2008, variant "a").

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (c, p)
        Nonnegative data, channels x pixels.
    n_components : int
    rng : numpy.random.Generator

    Returns
    -------
    spectra : ndarray of shape (c, k), float64
    abundances : ndarray of shape (k, p), float64
    """
    seed = int(rng.integers(2**31 - 1))
    U, S, Vt = randomized_svd(X, n_components, random_state=seed)
    spectra = np.zeros((X.shape[0], n_components))
    abundances = np.zeros((n_components, X.shape[1]))
    # The leading singular pair of a nonnegative matrix can be taken nonnegative.
    spectra[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    abundances[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, n_components):
        u, v = U[:, j], Vt[j]
        u_pos, u_neg = np.maximum(u, 0), np.maximum(-u, 0)
        v_pos, v_neg = np.maximum(v, 0), np.maximum(-v, 0)
        norm_pos = np.linalg.norm(u_pos) * np.linalg.norm(v_pos)
        norm_neg = np.linalg.norm(u_neg) * np.linalg.norm(v_neg)
        if norm_pos >= norm_neg:
            u_part, v_part, norm = u_pos, v_pos, norm_pos
        else:
            u_part, v_part, norm = u_neg, v_neg, norm_neg
        if norm == 0:
            continue
        scale = np.sqrt(S[j] * norm)
        spectra[:, j] = scale * u_part / np.linalg.norm(u_part)
        abundances[j] = scale * v_part / np.linalg.norm(v_part)
    mean = X.sum() / (X.shape[0] * X.shape[1])
    spectra[spectra == 0] = mean
    abundances[abundances == 0] = mean
    return spectra, abundances


def random_start(X, n_components, rng):
    """Random spectra and abundances scaled like ``sqrt(mean(X) / k)``.

    Returns
    -------
    spectra : ndarray of shape (c, k)
    abundances : ndarray of shape (k, p)
    """
    scale = np.sqrt(X.sum() / (X.shape[0] * X.shape[1]) / n_components)
    spectra = scale * np.abs(rng.standard_normal((X.shape[0], n_components)))
    abundances = scale * np.abs(rng.standard_normal((n_components, X.shape[1])))
    return spectra, abundances


def project_spectra(G, spectra, n_iterations=_PROJECTION_ITERATIONS):
    """W >= 0 with G W ≈ spectra in the KL sense (multiplicative updates, G fixed).

    Parameters
    ----------
    G : ndarray of shape (c, m)
    spectra : ndarray of shape (c, k)

    Returns
    -------
    ndarray of shape (m, k), float64
    """
    G = np.asarray(G, dtype=np.float64)
    column_sums = G.sum(axis=0)
    W = np.outer(1.0 / column_sums, spectra.sum(axis=0)) / G.shape[1]
    for _ in range(n_iterations):
        model = G @ W
        ratio = np.divide(spectra, model, out=np.zeros_like(model), where=model > 0)
        W *= (G.T @ ratio) / column_sums[:, None]
    return W


def _onto_simplex(values, free, target, eps):
    """Make the free entries of each column >= eps and sum to target.

    The excess over eps is rescaled, so a column that is already feasible is left as is.
    """
    free_values = np.where(free, np.maximum(values, eps), 0.0)
    n_free = free.sum(axis=0)
    excess = np.where(free, free_values - eps, 0.0)
    excess_sums = excess.sum(axis=0)
    room = target - n_free * eps
    share = np.divide(excess, excess_sums, out=np.zeros_like(excess), where=excess_sums > 0)
    even = np.where(free, 1.0 / np.maximum(n_free, 1), 0.0)
    share = np.where(excess_sums > 0, share, even)
    return np.where(free, eps + room * share, values)


def make_feasible(G, W, H, total_counts, *, simplex, simplex_rows, fixed_W, fixed_H, eps,
                  rescale=True):
    """Scale a start to the data and project it onto bounds, fixed entries and simplex.

    Parameters
    ----------
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
    H : ndarray of shape (k, p)
    total_counts : float
        Σ X; the model total Σ GWH is matched to it (by scaling the factor that is not
        constrained).
    simplex : {"H", "W", None}
    simplex_rows : ndarray of bool of shape (m,) or None
    fixed_W, fixed_H : ndarray or None
        Negative entries free, others held.
    eps : float
    rescale : bool
        Whether to match the total counts (False for a W fixed by ``transform``).

    Returns
    -------
    W, H : float64 ndarrays, feasible.
    """
    W = np.maximum(np.array(W, dtype=np.float64), eps)
    H = np.maximum(np.array(H, dtype=np.float64), eps)
    free_W = np.ones(W.shape, bool) if fixed_W is None else fixed_W < 0
    free_H = np.ones(H.shape, bool) if fixed_H is None else fixed_H < 0
    W = np.where(free_W, W, fixed_W if fixed_W is not None else 0.0)
    H = np.where(free_H, H, fixed_H if fixed_H is not None else 0.0)
    if simplex == "H":
        target = 1.0 - np.sum(np.where(free_H, 0.0, H), axis=0)
        H = _onto_simplex(H, free_H, target, eps)
    elif simplex == "W":
        rows = np.flatnonzero(simplex_rows)
        target = 1.0 - np.sum(np.where(free_W[rows], 0.0, W[rows]), axis=0)
        W[rows] = _onto_simplex(W[rows], free_W[rows], target, eps)
    if rescale:
        # Scale the free entries of the unconstrained factor so that Σ G W H = Σ X exactly
        # (held entries stay), which also makes this projection idempotent.
        column_sums = G.sum(axis=0)
        if simplex == "W":
            held = float((column_sums @ W) @ np.where(free_H, 0.0, H).sum(axis=1))
            free_part = float((column_sums @ W) @ np.where(free_H, H, 0.0).sum(axis=1))
        else:
            held = float((column_sums @ np.where(free_W, 0.0, W)) @ H.sum(axis=1))
            free_part = float((column_sums @ np.where(free_W, W, 0.0)) @ H.sum(axis=1))
        if free_part > 0 and total_counts > held:
            factor = (total_counts - held) / free_part
            if simplex == "W":
                H = np.where(free_H, np.maximum(H * factor, eps), H)
            else:
                W = np.where(free_W, np.maximum(W * factor, eps), W)
    return W, H
