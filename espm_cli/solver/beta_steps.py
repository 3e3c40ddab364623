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


def h_step(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0,
           simplex=False, fixed=None, eps=1e-10, workspace=None):
    """One majorize-minimize update of H with W fixed (any β, observed entries only).

    Parameters and return value as :func:`espm_cli.solver.reference.h_step`;
    ``workspace`` is what :func:`evaluate` returned at this same W and H (saves a pass).
    """
    k = H.shape[0]
    B = G @ W
    stats = workspace if workspace is not None else statistics(data, B, H, for_H=True)
    H64 = H.astype(np.float64)
    mu = sparsity_weights(mu, k)
    lin = mu[:, None] / (H64 + epsilon_reg) if np.any(mu > 0) else 0.0
    if lambda_L > 0 and shape_2d is not None:
        a = (0.5 * lambda_L * grid_degrees(shape_2d))[None, :]
        c = lambda_L * H64 * neighbour_sum(H64, shape_2d)
    else:
        a, c = 0.0, 0.0
    surrogate = PowerSurrogate(stats["P_H"], stats["Q_H"], H64, a, lin, c, data.beta)
    return constrained_update(surrogate, fixed=fixed,
                              simplex_rows=np.ones(k, bool) if simplex else None, eps=eps,
                              dtype=H.dtype)


def w_step(data, G, W, H, *, simplex_rows=None, fixed=None, eps=1e-10):
    """One majorize-minimize update of W with H fixed (any β, observed entries only).

    Parameters and return value as :func:`espm_cli.solver.reference.w_step`.
    """
    B = G @ W
    stats = statistics(data, B, H, for_W=True)
    P = G.T.astype(np.float64) @ stats["P_W"]
    Q = G.T.astype(np.float64) @ stats["Q_W"]
    surrogate = PowerSurrogate(P, Q, W.astype(np.float64), 0.0, 0.0, 0.0, data.beta)
    return constrained_update(surrogate, fixed=fixed, simplex_rows=simplex_rows, eps=eps,
                              dtype=W.dtype)


def evaluate(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The objective terms and, from the same pass, the H-step statistics at (W, H).

    Returns
    -------
    terms : ndarray of shape (3,)
    workspace : dict
        To be passed to the next :func:`h_step` at the same W and H.
    """
    stats = statistics(data, G @ W, H, for_H=True, loss=True)
    laplacian, log_sparsity = regularisation_terms(H, shape_2d=shape_2d, lambda_L=lambda_L,
                                                   mu=mu, epsilon_reg=epsilon_reg)
    return np.array([stats.pop("divergence"), laplacian, log_sparsity]), stats


def objective_terms(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The three terms of F in float64: divergence, Laplacian, log sparsity.

    Parameters and return value as :func:`espm_cli.solver.reference.objective_terms`; the
    first term is the β-divergence over the observed entries.
    """
    divergence = statistics(data, G @ W, H, loss=True)["divergence"]
    laplacian, log_sparsity = regularisation_terms(H, shape_2d=shape_2d, lambda_L=lambda_L,
                                                   mu=mu, epsilon_reg=epsilon_reg)
    return np.array([divergence, laplacian, log_sparsity])
