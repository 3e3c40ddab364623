"""Update steps for any β-divergence and for missing entries (the general reference path).

Same signatures as :mod:`espm_cli.solver.reference`, with ``data`` a
:class:`~espm_cli.solver.masked_counts.MaskedCounts`. Each step is the three pieces of the
solver core: the loss statistics from the data (:func:`masked_counts.statistics`), the
separable MM surrogate they define together with the regularisers
(:class:`~espm_cli.solver.surrogate.PowerSurrogate`), and its exact minimiser under the
constraints (:func:`~espm_cli.solver.constraints.constrained_update`). docs/solver.md
derives it.
"""

import numpy as np

from espm_cli.solver.constraints import constrained_update
from espm_cli.solver.grid import grid_degrees, neighbour_sum
from espm_cli.solver.masked_counts import statistics
from espm_cli.solver.reference import regularisation_terms, sparsity_weights
from espm_cli.solver.surrogate import PowerSurrogate


def _is_identity(G):
    """Whether G is the identity (G=None in the estimator): its products are skipped."""
    n = G.shape[0]
    return G.shape[1] == n and bool(np.all(np.diagonal(G) == 1)) and int(np.count_nonzero(G)) == n


def _spectra(G, W):
    """B = G W (W itself when G is the identity)."""
    return W if _is_identity(G) else G @ W


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
    workspace=None,
    l1=None,
):
    """One majorize-minimize update of H with W fixed (any β, observed entries only).

    Parameters and return value as :func:`espm_cli.solver.reference.h_step`;
    ``workspace`` is what :func:`evaluate` returned at this same W and H (saves a pass);
    ``l1`` (k,) or None: the weights of the L1 term Σ_kp l1_k H_kp, exact in the
    surrogate's linear coefficient (docs/solver.md).
    """
    k = H.shape[0]
    if workspace is None:
        stats = statistics(data, _spectra(G, W), H, for_H=True)
    else:
        stats = workspace
    H64 = H.astype(np.float64)
    mu = sparsity_weights(mu, k)
    lin = mu[:, None] / (H64 + epsilon_reg) if np.any(mu > 0) else 0.0
    if l1 is not None:
        lin = lin + np.asarray(l1, dtype=np.float64)[:, None]
    if lambda_L > 0 and shape_2d is not None:
        a = (0.5 * lambda_L * grid_degrees(shape_2d))[None, :]
        c = lambda_L * H64 * neighbour_sum(H64, shape_2d)
    else:
        a, c = 0.0, 0.0
    surrogate = PowerSurrogate(stats["P_H"], stats["Q_H"], H64, a, lin, c, data.beta)
    return constrained_update(
        surrogate, fixed=fixed, simplex_rows=np.ones(k, bool) if simplex else None, eps=eps, dtype=H.dtype
    )


def w_step(data, G, W, H, *, simplex_rows=None, fixed=None, eps=1e-10):
    """One majorize-minimize update of W with H fixed (any β, observed entries only).

    Parameters and return value as :func:`espm_cli.solver.reference.w_step`.
    """
    identity = _is_identity(G)
    stats = statistics(data, W if identity else G @ W, H, for_W=True)
    P, Q = (
        (stats[name] if identity else G.T @ stats[name]).astype(np.float64, copy=False)
        for name in ("P_W", "Q_W")
    )
    surrogate = PowerSurrogate(P, Q, W.astype(np.float64), 0.0, 0.0, 0.0, data.beta)
    return constrained_update(surrogate, fixed=fixed, simplex_rows=simplex_rows, eps=eps, dtype=W.dtype)


def evaluate(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0, l1=None):
    """The objective terms and, from the same pass, the H-step statistics at (W, H).

    Returns
    -------
    terms : ndarray of shape (3,), or (4,) with ``l1`` (the L1 term last)
    workspace : dict
        To be passed to the next :func:`h_step` at the same W and H.
    """
    stats = statistics(data, _spectra(G, W), H, for_H=True, loss=True)
    laplacian, log_sparsity = regularisation_terms(
        H, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg
    )
    terms = [stats.pop("divergence"), laplacian, log_sparsity]
    return np.array(terms + _l1_term(H, l1)), stats


def _l1_term(H, l1):
    """[Σ_kp l1_k H_kp] (H >= 0, so this is the L1 norm), or [] without ``l1``."""
    if l1 is None:
        return []
    return [float(np.asarray(l1, dtype=np.float64) @ H.sum(axis=1, dtype=np.float64))]


def objective_terms(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0, l1=None):
    """The three terms of F in float64: divergence, Laplacian, log sparsity (and L1).

    Parameters and return value as :func:`espm_cli.solver.reference.objective_terms`; the
    first term is the β-divergence over the observed entries.
    """
    divergence = statistics(data, _spectra(G, W), H, loss=True)["divergence"]
    laplacian, log_sparsity = regularisation_terms(
        H, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg
    )
    return np.array([divergence, laplacian, log_sparsity] + _l1_term(H, l1))
