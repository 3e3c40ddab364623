"""The separable surrogate of one MM step for any β, and its exact minimiser.

For every entry h of the factor being updated (current value h⁰, t = h / h⁰) the step
minimises a strictly convex 1-D function whose derivative is

    g(h) = P t^e1 − Q t^e2 + 2 a h + lin − c / h

(:mod:`espm_cli.solver.losses` for P, Q, e1, e2; ``a`` and ``c`` from the Laplacian, ``lin``
from the log sparsity tangent; docs/solver.md). g is increasing in h, so the minimiser over
[eps, ∞) is eps when g(eps) ≥ 0 and otherwise the root of g. For β = 1 and β = 2 the root
is the closed form of :mod:`espm_cli.solver.simplex` (:meth:`PowerSurrogate.quadratic`);
without Laplacian it is a power law; otherwise it is found by Newton steps on log h kept
inside a bracket (bisection as fallback). Under a simplex constraint each entry takes
``h(ν)``, the root of ``g + ν``, and ν per group is found by the same safeguarded solve.
"""

from dataclasses import dataclass

import numpy as np

from espm_cli.solver.losses import mm_exponents
from espm_cli.solver.simplex import bracketed_newton_step

_LOG_STEP = np.log(4.0)  # bracket expansion per step, in log h
_ROOT_RTOL = 1e-15  # on log h


@dataclass
class PowerSurrogate:
    """Coefficients of the per-entry surrogate (arrays of one shape, float64).

    Attributes
    ----------
    P, Q : ndarray
        Data-term statistics at the current point (``Q >= 0``, ``P >= 0``).
    h0 : ndarray
        The current entries (> 0).
    a, lin, c : ndarray
        Laplacian quadratic weight, linear (sparsity) weight, Laplacian log weight.
    beta : float
    """

    P: np.ndarray
    Q: np.ndarray
    h0: np.ndarray
    a: np.ndarray
    lin: np.ndarray
    c: np.ndarray
    beta: float

    def __post_init__(self):
        arrays = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (self.P, self.Q, self.h0, self.a, self.lin, self.c))
        )
        self.P, self.Q, self.h0, self.a, self.lin, self.c = (np.array(v) for v in arrays)

    @property
    def shape(self):
        """Shape of every coefficient array."""
        return self.P.shape

    def columns(self, cols):
        """The surrogate of the groups (columns) ``cols`` only."""
        return PowerSurrogate(
            self.P[:, cols],
            self.Q[:, cols],
            self.h0[:, cols],
            self.a[:, cols],
            self.lin[:, cols],
            self.c[:, cols],
            self.beta,
        )

    def rows(self, rows):
        """The surrogate of the entries in ``rows`` only."""
        return PowerSurrogate(
            self.P[rows], self.Q[rows], self.h0[rows], self.a[rows], self.lin[rows], self.c[rows], self.beta
        )

    def quadratic(self):
        """(a, β, c) of ``a h² + β h − c log h`` with the same minimiser (β = 1 or 2 only).

        β = 1: ``a, P + lin, Q h⁰ + c``; β = 2: ``a + P / (2 h⁰), lin − Q, c``.
        """
        if self.beta == 1.0:
            return self.a, self.P + self.lin, self.Q * self.h0 + self.c
        if self.beta == 2.0:
            return self.a + 0.5 * self.P / self.h0, self.lin - self.Q, self.c
        raise ValueError(f"the surrogate of beta={self.beta} has no quadratic form")

    def derivative(self, h, shift=0.0):
        """``g(h) + shift`` and ``h g'(h)`` (the slope in log h, >= 0)."""
        e1, e2 = mm_exponents(self.beta)
        t = h / self.h0
        up = self.P * t**e1
        down = self.Q * t**e2
        return (
            up - down + 2.0 * self.a * h + self.lin + shift - self.c / h,
            e1 * up - e2 * down + 2.0 * self.a * h + self.c / h,
        )


def _power_law(s, shift):
    """The root without Laplacian (a = c = 0) where it is a power law, else None."""
    if np.any(s.a != 0) or np.any(s.c != 0):
        return None
    e1, e2 = mm_exponents(s.beta)
    lin = s.lin + shift
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if e1 == 0.0:  # β ≤ 1: P + lin = Q t^e2
            t = (s.Q / (s.P + lin)) ** (-1.0 / e2)
        elif e2 == 0.0:  # β ≥ 2: P t^e1 + lin = Q
            t = (np.maximum(s.Q - lin, 0.0) / s.P) ** (1.0 / e1)
        elif np.all(lin == 0):
            t = (s.Q / s.P) ** (1.0 / (e1 - e2))
        else:
            return None
    return np.where(np.isfinite(t), t * s.h0, 0.0)


def power_minimiser(s, eps, shift=0.0, start=None, max_iter=200):
    """Minimiser over h >= eps of the surrogate (plus ``shift * h``), entry by entry.

    Parameters
    ----------
    s : PowerSurrogate
    eps : float
        Lower bound.
    shift : float or ndarray broadcastable to ``s.shape``
        Added to ``lin`` (a simplex multiplier).
    start : ndarray or None
        A guess (default: h⁰).
    max_iter : int

    Returns
    -------
    ndarray of ``s.shape``, float64, >= eps
    """
    shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), s.shape)
    closed = _power_law(s, shift)
    if closed is not None:
        return np.maximum(closed, eps)
    h = np.full(s.shape, float(eps))
    g_eps, _ = s.derivative(h, shift)
    active = np.flatnonzero(g_eps < 0)
    if active.size == 0:
        return h
    flat = PowerSurrogate(*(v.ravel()[active] for v in (s.P, s.Q, s.h0, s.a, s.lin, s.c)), s.beta)
    shift_flat = shift.ravel()[active]
    guess = s.h0 if start is None else np.asarray(start, dtype=np.float64)
    guess = np.broadcast_to(guess, s.shape).ravel()[active]
    low = np.full(active.size, np.log(eps))
    high = np.log(np.maximum(guess, eps))
    # Expand the bracket upwards until g > 0 there (g(eps) < 0 holds at the bottom).
    for _ in range(max_iter):
        value, _ = flat.derivative(np.exp(high), shift_flat)
        below = value <= 0
        if not below.any():
            break
        low = np.where(below, high, low)
        high = np.where(below, high + _LOG_STEP, high)
    u = np.clip(np.log(np.maximum(guess, eps)), low, high)
    todo = np.ones(active.size, bool)
    for _ in range(max_iter):
        sub = np.flatnonzero(todo)
        if sub.size == 0:
            break
        part = PowerSurrogate(
            flat.P[sub], flat.Q[sub], flat.h0[sub], flat.a[sub], flat.lin[sub], flat.c[sub], s.beta
        )
        value, slope = part.derivative(np.exp(u[sub]), shift_flat[sub])
        lo, hi = low[sub], high[sub]
        lo = np.where(value < 0, u[sub], lo)
        hi = np.where(value >= 0, u[sub], hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = u[sub] - value / slope
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        new_u = np.where(inside, newton, 0.5 * (lo + hi))
        done = (
            (np.abs(new_u - u[sub]) <= _ROOT_RTOL * np.maximum(1.0, np.abs(u[sub])))
            | (value == 0)
            | (hi - lo <= _ROOT_RTOL * np.maximum(1.0, np.abs(hi)))
        )
        low[sub], high[sub] = lo, hi
        u[sub] = np.where(value == 0, u[sub], new_u)
        todo[sub[done]] = False
    h.ravel()[active] = np.maximum(np.exp(u), eps)
    return h


def power_simplex_minimiser(s, free, target, eps, rtol=1e-13, max_iter=200):
    """Minimise the surrogate per column subject to ``Σ_free h = target``, ``h >= eps``.

    KKT: every free entry is ``h(ν) = power_minimiser(s, eps, shift=ν)``; ``Σ h(ν)`` is
    continuous and non-increasing in ν. Bracket, per column over the free entries with any
    data or Laplacian term: at ``ν_lo = max_k −g_k(T)`` the maximising entry alone reaches
    T; at ``ν_hi = max_k −g_k(T / n_free)`` every entry is at most T / n_free (> eps).
    Entries with only a linear term (P = Q = a = c = 0: a pixel with every entry masked)
    form groups of their own kind: all their mass goes on the smallest ``lin``.

    Parameters
    ----------
    s : PowerSurrogate of shape (n_entries, n_groups)
    free : ndarray of bool, same shape
    target : ndarray of shape (n_groups,)
    eps : float
    rtol : float
        Relative tolerance on ``Σ h − target``.
    max_iter : int

    Returns
    -------
    ndarray, float64: the minimiser on the free entries, 0 elsewhere.
    """
    target = np.broadcast_to(np.asarray(target, dtype=np.float64), s.shape[1:])
    n_free = free.sum(axis=0)
    linear_entry = (s.P == 0) & (s.Q == 0) & (s.a == 0) & (s.c == 0)
    reachable = free & ~linear_entry
    h = np.zeros(s.shape)
    groups = np.flatnonzero(reachable.any(axis=0))
    if groups.size:
        part = s.columns(groups)
        part_free, part_reach = free[:, groups], reachable[:, groups]
        T = target[groups]
        g_full, _ = part.derivative(np.broadcast_to(T, part.shape))
        g_share, _ = part.derivative(np.broadcast_to(T / n_free[groups], part.shape))
        nu_low = np.where(part_reach, -g_full, -np.inf).max(axis=0)
        nu_high = np.maximum(np.where(part_reach, -g_share, -np.inf).max(axis=0), nu_low)
        nu = nu_low.copy()
        current = part.h0.copy()
        active = np.ones(groups.size, bool)
        for _ in range(max_iter):
            cols = np.flatnonzero(active)
            if cols.size == 0:
                break
            sub = part.columns(cols)
            values = power_minimiser(sub, eps, shift=nu[cols][None, :], start=current[:, cols])
            current[:, cols] = values
            _, slope_log = sub.derivative(values, nu[cols][None, :])
            with np.errstate(divide="ignore", invalid="ignore"):
                slopes = np.where((values > eps) & (slope_log > 0), -values / slope_log, 0.0)
            use = part_reach[:, cols]
            total = np.sum(np.where(part_free[:, cols], values, 0.0), axis=0)
            slope = np.sum(np.where(use, slopes, 0.0), axis=0)
            step, low, high, done = bracketed_newton_step(
                nu[cols], total - T[cols], slope, nu_low[cols], nu_high[cols], rtol * T[cols]
            )
            nu_low[cols], nu_high[cols] = low, high
            nu[cols] = step
            active[cols[done]] = False
        h[:, groups] = np.where(part_free, np.where(part_reach, current, eps), 0.0)
    linear_groups = np.flatnonzero(~reachable.any(axis=0) & (n_free > 0))
    if linear_groups.size:
        lin = np.where(free[:, linear_groups], s.lin[:, linear_groups], np.inf)
        best = np.argmin(lin, axis=0)
        h[:, linear_groups] = np.where(free[:, linear_groups], eps, 0.0)
        h[best, linear_groups] = target[linear_groups] - (n_free[linear_groups] - 1) * eps
    return h
