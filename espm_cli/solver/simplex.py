"""Minimiser of the separable surrogate, with or without a simplex constraint.

Every update of SmoothNMF minimises, entry by entry, a strictly convex term

    s(h) = a h² + β h − c log h,     a ≥ 0, c ≥ 0, over h ≥ eps,

whose unconstrained minimiser is :func:`quadratic_log_minimiser`. Under a simplex
constraint (the free entries of one group, a column, sum to ``target``) the KKT
conditions give ``h_k(ν) = max(eps, h*(β_k + ν))`` for one multiplier ν per group;
``Σ_k h_k(ν)`` is continuous, convex and non-increasing in ν, so the root is found by
Newton steps kept inside a shrinking bracket (bisection as fallback), vectorised over all
groups at once. Linear terms (a = c = 0) bound ν from below and are handled apart. See
docs/solver.md.
"""

import numpy as np


def quadratic_log_minimiser(a, beta, c):
    """Positive root of ``2 a h² + β h − c = 0`` (the minimiser of ``a h² + β h − c log h``).

    Written without cancellation: ``2c / (β + sqrt(β² + 8ac))`` for β > 0 and
    ``(sqrt(β² + 8ac) − β) / (4a)`` for β ≤ 0 (then a > 0 or c = 0 is required).
    Entries with ``a = 0`` and ``c = 0`` give 0.

    Parameters
    ----------
    a, beta, c : ndarray
        Broadcastable arrays; ``a >= 0``, ``c >= 0``.

    Returns
    -------
    ndarray
    """
    root = np.sqrt(beta * beta + 8.0 * a * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        positive_beta = 2.0 * c / (beta + root)
        other = (root - beta) / (4.0 * a)
    h = np.where(beta > 0, positive_beta, other)
    return np.where(np.isfinite(h), h, 0.0)


def _sum_and_slope(nu, a, beta, c, free, eps):
    """``Σ_free max(eps, h*(β+ν))`` and its derivative in ν, per group (columns)."""
    shifted = beta + nu
    h = quadratic_log_minimiser(a, shifted, c)
    # dh*/dβ = −h / sqrt(β² + 8ac); zero where the bound eps is active.
    root = np.sqrt(shifted * shifted + 8.0 * a * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where((h > eps) & (root > 0), -h / root, 0.0)
    clipped = np.maximum(h, eps)
    return np.sum(np.where(free, clipped, 0.0), axis=0), np.sum(np.where(free, slope, 0.0), axis=0)


def bracketed_newton_step(nu, excess, slope, low, high, tolerance):
    """One safeguarded Newton step on a multiplier ν whose sum is decreasing in ν.

    The root of ``excess(ν) = Σ h(ν) − T`` lies in ``[low, high]``; the bracket is narrowed
    by the sign of ``excess`` at ``nu``, and the Newton step ``nu − excess / slope`` is taken
    when it falls inside, the midpoint otherwise. Shared by every loss's simplex solve.

    Returns
    -------
    nu, low, high : ndarray
        The next multipliers and bracket (``nu`` unchanged where done).
    done : ndarray of bool
        ``|excess| <= tolerance`` or the bracket has closed to rounding.
    """
    low = np.where(excess > 0, nu, low)
    high = np.where(excess <= 0, nu, high)
    with np.errstate(divide="ignore", invalid="ignore"):
        newton = nu - excess / slope
    inside = np.isfinite(newton) & (newton > low) & (newton < high)
    step = np.where(inside, newton, 0.5 * (low + high))
    done = (np.abs(excess) <= tolerance) | (
        high - low <= 1e-15 * np.maximum(np.abs(low), np.abs(high)))
    return np.where(done, nu, step), low, high, done


def simplex_minimiser(a, beta, c, free, target, eps, rtol=1e-13, max_iter=200):
    """Minimise ``Σ_k a h² + β h − c log h`` per column subject to ``Σ_free h = target``.

    Parameters
    ----------
    a, beta, c : ndarray of shape (n_entries, n_groups)
        Surrogate coefficients (``a`` may be any array broadcastable to that shape).
    free : ndarray of bool, shape (n_entries, n_groups)
        Entries that take part (others are returned as 0 and ignored).
    target : ndarray of shape (n_groups,)
        What the free entries of each group must sum to; ``target > n_free * eps``.
    eps : float
        Lower bound of every entry.
    rtol : float
        Relative tolerance on ``Σ h − target``.
    max_iter : int
        Safeguard on the number of Newton/bisection steps.

    Returns
    -------
    h : ndarray of shape (n_entries, n_groups), float64
        The minimiser on the free entries, 0 elsewhere.
    """
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), beta.shape)
    beta = np.asarray(beta, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    target = np.broadcast_to(np.asarray(target, dtype=np.float64), beta.shape[1:])
    n_free = free.sum(axis=0)
    # A group whose free terms are all linear (a = c = 0) puts its mass on its smallest β.
    linear = np.all(~free | ((a == 0) & (c == 0)), axis=0) & (n_free > 0)
    # Bracket: at nu_low one free entry alone reaches target (h*(β + ν) = T ⇔
    # β + ν = c/T − 2aT); at nu_high Σ h ≤ n_free·eps + Σ c / (β + ν) ≤ T.
    big = np.inf
    reachable = free & ((a > 0) | (c > 0))
    # Solve for t = ν + β_ref (β_ref: the group's smallest β among entries that can carry
    # mass) so that β + ν near 0 is not computed by cancellation between large numbers.
    beta_ref = np.where(reachable, beta, np.inf).min(axis=0)
    beta = beta - np.where(np.isfinite(beta_ref), beta_ref, 0.0)
    lower_candidates = np.where(reachable, c / target - 2.0 * a * target - beta, -big)
    nu_low = lower_candidates.max(axis=0)
    c_total = np.sum(np.where(free, c, 0.0), axis=0)
    beta_min = np.where(free, beta, big).min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu_high = c_total / (target - n_free * eps) - beta_min
    active = (n_free > 0) & ~linear
    nu_low = np.where(active, nu_low, 0.0)
    nu_high = np.where(active, np.maximum(nu_high, nu_low), 0.0)
    nu = nu_low.copy()
    for _ in range(max_iter):
        if not active.any():
            break
        total, slope = _sum_and_slope(nu[active], a[:, active], beta[:, active], c[:, active],
                                      free[:, active], eps)
        step, low, high, done = bracketed_newton_step(nu[active], total - target[active],
                                                      slope, nu_low[active], nu_high[active],
                                                      rtol * target[active])
        nu_low[active], nu_high[active] = low, high
        nu[active] = step
        still = active.copy()
        still[active] = ~done
        active = still
    h = np.where(free, np.maximum(quadratic_log_minimiser(a, beta + nu, c), eps), 0.0)
    # A linear free entry (a = c = 0) bounds ν from below by −β: if at that ν the other
    # entries still leave room, the entry with the smallest such β takes the rest.
    linear_entries = free & (a == 0) & (c == 0)
    mixed = linear_entries.any(axis=0) & ~linear & (n_free > 0)
    if mixed.any():
        cols = np.flatnonzero(mixed)
        linear_beta = np.where(linear_entries[:, cols], beta[:, cols], np.inf)
        best = np.argmin(linear_beta, axis=0)
        nu_floor = -linear_beta.min(axis=0)
        at_floor = np.where(free[:, cols], np.maximum(
            quadratic_log_minimiser(a[:, cols], beta[:, cols] + nu_floor, c[:, cols]), eps), 0.0)
        room = target[cols] - at_floor.sum(axis=0)
        # Entries with a = 0 < c have a pole at ν = −β: the floor must lie above all poles.
        poles = free[:, cols] & (a[:, cols] == 0) & (c[:, cols] > 0)
        pole_beta = np.where(poles, beta[:, cols], np.inf).min(axis=0)
        take = (room > 0) & (pole_beta > -nu_floor)
        at_floor[best[take], np.flatnonzero(take)] += room[take]
        h[:, cols[take]] = at_floor[:, take]
    if linear.any():
        cols = np.flatnonzero(linear)
        masked_beta = np.where(free[:, cols], beta[:, cols], np.inf)
        best = np.argmin(masked_beta, axis=0)
        h[:, cols] = np.where(free[:, cols], eps, 0.0)
        h[best, cols] = target[cols] - (n_free[cols] - 1) * eps
    return h
