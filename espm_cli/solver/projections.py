"""Euclidean projections onto the feasible set of a factor (for the gradient solvers).

The multiplicative steps minimise a separable surrogate under the constraints
(:mod:`espm_cli.solver.constraints`); a gradient step instead needs the point of the
feasible set nearest (in the Euclidean norm) to a trial point. The feasible set of a
factor is, per column,

- held entries (``fixed >= 0``) at their value,
- free entries ``>= eps``,
- optionally, the free entries of the ``simplex_rows`` summing to ``target = 1 − Σ held``.

Without the simplex the projection is the clip at ``eps``. With it, the problem per column
``min ½‖h − v‖²  s.t. h_i >= eps, Σ h_i = T`` is, with ``u = h − eps``, the projection of
``v − eps`` onto the scaled simplex ``{u >= 0, Σ u = T − n eps}``: ``u = (v − eps − θ)₊``
with the threshold θ found exactly by sorting (Held, Wolfe & Crowder 1974; Duchi et al.
2008): sort ``y = v − eps`` decreasingly, ``ρ`` the largest ``j`` with
``y_(j) − (Σ_{i<=j} y_(i) − s) / j > 0``, ``θ = (Σ_{i<=ρ} y_(i) − s) / ρ``.
"""

import numpy as np


def project_onto_simplex(values, free, target, eps):
    """Exact Euclidean projection of every column's free entries onto the shifted simplex.

    Parameters
    ----------
    values : ndarray of shape (n, p)
        Trial point (any real values).
    free : ndarray of bool of shape (n, p)
        Entries that take part; the others are returned unchanged.
    target : float or ndarray of shape (p,)
        What the free entries of each column must sum to; needs ``target > n_free · eps``
        in every column that has a free entry.
    eps : float
        Lower bound of every free entry.

    Returns
    -------
    ndarray of shape (n, p), float64
        ``argmin ½‖h − v‖²`` over ``h_i >= eps`` (free), ``Σ_free h_i = target`` per column.
    """
    values = np.asarray(values, dtype=np.float64)
    free = np.broadcast_to(np.asarray(free, dtype=bool), values.shape)
    n, p = values.shape
    target = np.broadcast_to(np.asarray(target, dtype=np.float64), (p,))
    n_free = free.sum(axis=0)
    budget = target - n_free * eps  # Σ of u = h − eps
    shifted = np.where(free, values - eps, -np.inf)
    ordered = -np.sort(-shifted, axis=0)  # decreasing, the held entries (−inf) last
    finite = np.isfinite(ordered)
    partial = np.cumsum(np.where(finite, ordered, 0.0), axis=0) - budget[None, :]
    ranks = np.arange(1, n + 1, dtype=np.float64)[:, None]
    # ρ: the last rank at which the sorted value exceeds the running threshold; the
    # condition holds for ranks 1..ρ and fails after (the classic argument), and it
    # always holds at rank 1.
    active = finite & (ordered - partial / ranks > 0)
    rho = np.where(active.any(axis=0), n - np.argmax(active[::-1], axis=0), 1)
    columns = np.arange(p)
    theta = partial[rho - 1, columns] / rho
    projected = np.maximum(values - eps - theta[None, :], 0.0) + eps
    return np.where(free, projected, values)


def project_factor(values, *, fixed=None, simplex_rows=None, eps):
    """The nearest feasible factor: held entries set, free ones ``>= eps``, simplex.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_columns)
    fixed : ndarray of the same shape or None
        Entries >= 0 held at that value, negative entries free.
    simplex_rows : ndarray of bool of shape (n_rows,) or None
        Rows whose free entries sum to 1 − Σ held in every column (None: no simplex).
    eps : float

    Returns
    -------
    ndarray, float64
    """
    values = np.asarray(values, dtype=np.float64)
    free = np.ones(values.shape, bool) if fixed is None else fixed < 0
    projected = np.maximum(values, eps)
    if simplex_rows is not None:
        rows = np.flatnonzero(simplex_rows)
        held = 0.0 if fixed is None else np.sum(np.where(free[rows], 0.0, fixed[rows]), axis=0)
        projected[rows] = project_onto_simplex(values[rows], free[rows], 1.0 - held, eps)
    if fixed is not None:
        projected = np.where(free, projected, fixed)
    return projected
