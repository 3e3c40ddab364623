"""The constraint projections every update uses: bounds, fixed entries, simplex root.

One implementation for every loss and backend. A step hands over the separable surrogate
of the factor it updates (:class:`~espm_cli.solver.surrogate.PowerSurrogate`, or for the
KL W step its numerator and denominator); these functions return its exact minimiser under

- the lower bound ``eps`` on every free entry,
- the held entries (``fixed >= 0``: set to that value, left out of the update),
- optionally the simplex: the free entries of each column (or of the ``simplex_rows`` of
  each column) sum to 1 − Σ held.

β = 1 and β = 2 go through the closed forms of :mod:`espm_cli.solver.simplex`; other β
through the safeguarded root solves of :mod:`espm_cli.solver.surrogate`.
"""

import numpy as np

from espm_cli.solver.losses import is_closed_form
from espm_cli.solver.simplex import quadratic_log_minimiser, simplex_minimiser
from espm_cli.solver.surrogate import power_minimiser, power_simplex_minimiser


def free_entries(fixed, shape):
    """Boolean mask of the free entries (all of them when ``fixed`` is None)."""
    return np.ones(shape, dtype=bool) if fixed is None else fixed < 0


def held_mass(fixed, free):
    """Σ of the held entries per column (0 when nothing is held)."""
    return 0.0 if fixed is None else np.sum(np.where(free, 0.0, fixed), axis=0)


def quadratic_update(a, beta, c, *, fixed=None, simplex=False, eps, dtype):
    """Minimiser of ``Σ a h² + β h − c log h`` under bounds, fixed entries, column simplex.

    The closed-form case (KL and Frobenius H steps). Arithmetic in the inputs' dtype, the
    simplex root in float64.

    Parameters
    ----------
    a, beta, c : ndarray (broadcastable to the factor's shape)
    fixed : ndarray or None
    simplex : bool
        Whether the free entries of every column sum to 1 − Σ held.
    eps : float
    dtype : numpy dtype

    Returns
    -------
    ndarray, ``dtype``
    """
    free = free_entries(fixed, np.broadcast_shapes(np.shape(beta), np.shape(c)))
    if simplex:
        target = (
            1.0 - np.sum(np.where(free, 0.0, fixed), axis=0, dtype=np.float64) if fixed is not None else 1.0
        )
        updated = simplex_minimiser(a, beta, c, free, target, eps).astype(dtype)
    else:
        updated = np.maximum(quadratic_log_minimiser(a, beta, c), eps).astype(dtype, copy=False)
    if fixed is not None:
        updated = np.where(free, updated, fixed).astype(dtype, copy=False)
    return updated


def _minimise(surrogate, eps):
    if is_closed_form(surrogate.beta):
        return np.maximum(quadratic_log_minimiser(*surrogate.quadratic()), eps)
    return power_minimiser(surrogate, eps)


def _minimise_on_simplex(surrogate, free, target, eps):
    if is_closed_form(surrogate.beta):
        return simplex_minimiser(*surrogate.quadratic(), free, target, eps)
    return power_simplex_minimiser(surrogate, free, target, eps)


def constrained_update(surrogate, *, fixed=None, simplex_rows=None, eps, dtype):
    """Minimiser of a separable surrogate under bounds, fixed entries and simplex.

    Parameters
    ----------
    surrogate : PowerSurrogate of shape (n_rows, n_columns)
    fixed : ndarray of the same shape or None
        Entries >= 0 held, negative entries free.
    simplex_rows : ndarray of bool of shape (n_rows,) or None
        Rows whose free entries sum to 1 − Σ held in every column (all rows for the H
        simplex); None: no simplex.
    eps : float
    dtype : numpy dtype
        Of the result.

    Returns
    -------
    ndarray of shape (n_rows, n_columns), ``dtype``
    """
    if simplex_rows is not None and simplex_rows.all() and is_closed_form(surrogate.beta):
        return quadratic_update(*surrogate.quadratic(), fixed=fixed, simplex=True, eps=eps, dtype=dtype)
    free = free_entries(fixed, surrogate.shape)
    updated = _minimise(surrogate, eps)
    if simplex_rows is not None:
        rows = np.flatnonzero(simplex_rows)
        part = surrogate.rows(rows)
        target = 1.0 - held_mass(None if fixed is None else fixed[rows], free[rows])
        updated[rows] = _minimise_on_simplex(part, free[rows], target, eps)
    if fixed is not None:
        updated = np.where(free, updated, fixed)
    return updated.astype(dtype, copy=False)


def multiplicative_w_update(numerator, denominator, *, simplex_rows=None, fixed=None, eps):
    """The KL W step ``W = numerator / denominator`` under bounds, fixed entries, simplex.

    Shared by the reference and the numba backend (the surrogate is
    ``denominator w − numerator log w`` per entry).

    Parameters
    ----------
    numerator, denominator : ndarray of shape (m, k)
    simplex_rows : ndarray of bool of shape (m,) or None
    fixed : ndarray of shape (m, k) or None
    eps : float

    Returns
    -------
    ndarray of shape (m, k), dtype of ``numerator``
    """
    free = free_entries(fixed, numerator.shape)
    W_new = np.maximum(numerator / denominator, eps)
    if simplex_rows is not None:
        rows = np.flatnonzero(simplex_rows)
        target = 1.0 - held_mass(None if fixed is None else fixed[rows], free[rows])
        W_new[rows] = simplex_minimiser(0.0, denominator[rows], numerator[rows], free[rows], target, eps)
    if fixed is not None:
        W_new = np.where(free, W_new, fixed)
    return W_new
