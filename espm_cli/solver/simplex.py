"""Minimiser of the separable surrogate, with or without a simplex constraint.

Every update of SmoothNMF minimises, entry by entry, a strictly convex term

    s(h) = a h² + β h − c log h,     a ≥ 0, c ≥ 0, over h ≥ eps,

whose unconstrained minimiser is :func:`quadratic_log_root`. Under a simplex constraint
(the free entries of one group, a column, sum to ``target``) the KKT conditions give
``h_k(ν) = max(eps, h*(β_k + ν))`` for one multiplier ν per group; ``Σ_k h_k(ν)`` is
continuous, convex and non-increasing in ν, so the root is found by Newton steps kept
inside a shrinking bracket (bisection as fallback). Linear terms (a = c = 0) bound ν from
below and are handled apart. See docs/solver.md.

One implementation for every caller: :func:`simplex_root` solves one group and is
compiled with numba, so that the fused kernels of the fast backend call it per pixel
(:mod:`espm_cli.solver._numba_kernels`) and :func:`simplex_minimiser` calls it per column
for the numpy paths; :func:`bracket_step` is the safeguarded Newton step on a multiplier
that the root solves of the other β (:mod:`espm_cli.solver.surrogate`) take too.
"""

import math

import numpy as np
from numba import njit, vectorize

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(inline="always", **_JIT)
def _root_from_sqrt(a, beta, c, root):
    """:func:`quadratic_log_root` given ``root = sqrt(β² + 8ac)``.

    Both quotients have denominators that are never 0: when numba vectorises a loop over
    this function it may evaluate both branches for every entry, and a 0/0 in the branch
    not taken (a = 0 with β > 0, every KL W step without a Laplacian) would still raise
    numpy's "invalid value" warning.
    """
    denominator = beta + root
    positive_beta = 2.0 * c / (denominator if denominator != 0.0 else 1.0)
    other = (root - beta) / (4.0 * a if a != 0.0 else 1.0)
    if beta > 0.0:
        h = positive_beta  # beta + root > 0 here
    elif a != 0.0:
        h = other
    else:
        return 0.0  # a = 0, β <= 0: no positive root (0 where c = 0 too)
    if not math.isfinite(h):
        return 0.0
    return h


@njit(**_JIT)
def quadratic_log_root(a, beta, c):
    """Positive root of ``2 a h² + β h − c = 0`` (the minimiser of ``a h² + β h − c log h``).

    Written without cancellation: ``2c / (β + sqrt(β² + 8ac))`` for β > 0 and
    ``(sqrt(β² + 8ac) − β) / (4a)`` for β ≤ 0 (then a > 0 or c = 0 is required); 0 where
    that is not finite (a = c = 0).

    Parameters
    ----------
    a, beta, c : float
        ``a >= 0``, ``c >= 0``.

    Returns
    -------
    float
    """
    if a == 0.0 and beta > 0.0:
        return c / beta  # = 2c / (β + |β|) exactly, without the square root
    return _root_from_sqrt(a, beta, c, math.sqrt(beta * beta + 8.0 * a * c))


@vectorize(["float64(float64, float64, float64)", "float32(float32, float32, float32)"], cache=True)
def quadratic_log_minimiser(a, beta, c):
    """:func:`quadratic_log_root` entry by entry over broadcastable arrays (a numpy ufunc).

    Parameters
    ----------
    a, beta, c : ndarray
        Broadcastable arrays; ``a >= 0``, ``c >= 0``.

    Returns
    -------
    ndarray
    """
    return quadratic_log_root(a, beta, c)


@njit(**_JIT)
def bracket_step(nu, excess, slope, low, high, tolerance):
    """One safeguarded Newton step on a multiplier ν whose sum is decreasing in ν.

    The root of ``excess(ν) = Σ h(ν) − T`` lies in ``[low, high]``; the bracket is narrowed
    by the sign of ``excess`` at ``nu``, and the Newton step ``nu − excess / slope`` is taken
    when it falls inside, the midpoint otherwise.

    Returns
    -------
    nu, low, high : float
        The next multiplier (``nu`` itself when done) and bracket.
    done : bool
        ``|excess| <= tolerance`` or the bracket has closed to rounding.
    """
    if excess > 0.0:
        low = nu
    else:
        high = nu
    done = abs(excess) <= tolerance or (high - low <= 1e-15 * max(abs(low), abs(high)))
    if done:
        return nu, low, high, True
    newton = nu - excess / slope if slope != 0.0 else math.nan
    if math.isfinite(newton) and newton > low and newton < high:
        return newton, low, high, False
    return 0.5 * (low + high), low, high, False


@njit(**_JIT)
def _bracket_steps(nu, excess, slope, low, high, tolerance, done):
    for g in range(nu.shape[0]):
        nu[g], low[g], high[g], done[g] = bracket_step(
            nu[g], excess[g], slope[g], low[g], high[g], tolerance[g]
        )


def bracketed_newton_step(nu, excess, slope, low, high, tolerance):
    """:func:`bracket_step` for every group (1-D arrays); the inputs are not modified.

    Returns
    -------
    nu, low, high : ndarray
    done : ndarray of bool
    """
    nu, low, high = (np.array(v, dtype=np.float64) for v in (nu, low, high))
    done = np.empty(nu.shape, dtype=np.bool_)
    _bracket_steps(
        nu,
        np.asarray(excess, dtype=np.float64),
        np.asarray(slope, dtype=np.float64),
        low,
        high,
        np.broadcast_to(np.asarray(tolerance, dtype=np.float64), nu.shape).copy(),
        done,
    )
    return nu, low, high, done


@njit(**_JIT)
def simplex_root(a, beta, c, free, n, target, eps, out, guess=None, rtol=1e-13, max_iter=200):
    """Minimise ``Σ_free a_e h² + β_e h − c_e log h`` subject to ``Σ_free h = target``.

    One group of ``n`` entries, ``h >= eps``. KKT: ``h_e(ν) = max(eps, h*(a_e, β_e + ν,
    c_e))``. The multiplier is solved for as ``t = ν + β_ref``, β_ref the smallest β among
    the entries that can carry mass (a > 0 or c > 0), so that β + ν near 0 is not computed
    by cancellation between large numbers. Bracket: at ``ν_lo = max_e c_e/T − 2 a_e T −
    β_e`` one entry alone reaches T; at ``ν_hi = Σ c / (T − n_free eps) − min β`` the sum
    is at most T. A group whose free entries are all linear (a = c = 0) puts its mass on
    its smallest β; a linear entry in a mixed group bounds ν from below by −β, and if at
    that bound the others leave room, that entry takes the rest.

    Parameters
    ----------
    a, beta, c : ndarray of float64, shape (>= n,)
    free : ndarray of bool, shape (>= n,)
    n : int
    target : float
        ``target > n_free * eps``.
    eps : float
    out : ndarray of float64, shape (>= n,)
        Receives the minimiser on the free entries (the others are left as they are).
    guess : ndarray of shape (>= n,) or None
        An estimate of the minimiser (the previous H in an H step). The iteration then
        starts, when it lies inside the bracket, at the multiplier that makes the guess
        stationary on average, ``Σ (c_e − g_e (β_e + 2 a_e g_e)) / Σ g_e``, instead of at the
        bracket's lower end: near convergence that is within rounding of the root, and the
        solve takes about half the Newton steps. Same root, same stopping test.
    rtol : float
        Relative tolerance on ``Σ h − target``.
    max_iter : int
        Safeguard on the number of Newton/bisection steps.
    """
    n_free = 0
    beta_ref = math.inf
    for e in range(n):
        if free[e]:
            n_free += 1
            if (a[e] > 0.0 or c[e] > 0.0) and beta[e] < beta_ref:
                beta_ref = beta[e]
    if n_free == 0:
        return
    if not math.isfinite(beta_ref):  # every free entry linear: all mass on the smallest β
        best = -1
        for e in range(n):
            if free[e]:
                out[e] = eps
                if best < 0 or beta[e] < beta[best]:
                    best = e
        out[best] = target - (n_free - 1) * eps
        return
    nu_low = -math.inf
    c_total = 0.0
    beta_min = math.inf
    for e in range(n):
        if free[e]:
            shifted = beta[e] - beta_ref
            if a[e] > 0.0 or c[e] > 0.0:
                nu_low = max(nu_low, c[e] / target - 2.0 * a[e] * target - shifted)
            c_total += c[e]
            beta_min = min(beta_min, shifted)
    nu_high = c_total / (target - n_free * eps) - beta_min  # IEEE: x/0 is inf, 0/0 NaN
    if not math.isnan(nu_high) and nu_low > nu_high:
        nu_high = nu_low
    nu = nu_low
    if guess is not None:
        mass = 0.0
        stationary = 0.0
        for e in range(n):
            if free[e]:
                mass += guess[e]
                stationary += c[e] - guess[e] * (beta[e] - beta_ref + 2.0 * a[e] * guess[e])
        if mass > 0.0:
            candidate = stationary / mass
            if candidate > nu_low and candidate < nu_high:
                nu = candidate
    for _ in range(max_iter):
        total = 0.0
        slope = 0.0
        for e in range(n):
            if free[e]:
                shifted = beta[e] - beta_ref + nu
                root = math.sqrt(shifted * shifted + 8.0 * a[e] * c[e])
                h = _root_from_sqrt(a[e], shifted, c[e], root)
                if h > eps and root > 0.0:
                    slope -= h / root
                total += max(h, eps)
        nu, nu_low, nu_high, done = bracket_step(nu, total - target, slope, nu_low, nu_high, rtol * target)
        if done:
            break
    for e in range(n):
        if free[e]:
            out[e] = max(quadratic_log_root(a[e], beta[e] - beta_ref + nu, c[e]), eps)
    _linear_entry_takes_the_rest(a, beta, c, free, n, target, eps, out, beta_ref)


@njit(**_JIT)
def _linear_entry_takes_the_rest(a, beta, c, free, n, target, eps, out, beta_ref):
    """A linear free entry (a = c = 0) in a mixed group: see :func:`simplex_root`."""
    best = -1
    for e in range(n):
        if free[e] and a[e] == 0.0 and c[e] == 0.0 and (best < 0 or beta[e] < beta[best]):
            best = e
    if best < 0:
        return
    nu_floor = -(beta[best] - beta_ref)
    room = target
    pole_beta = math.inf  # entries with a = 0 < c have a pole at ν = −β
    for e in range(n):
        if free[e]:
            room -= max(quadratic_log_root(a[e], beta[e] - beta_ref + nu_floor, c[e]), eps)
            if a[e] == 0.0 and c[e] > 0.0:
                pole_beta = min(pole_beta, beta[e] - beta_ref)
    if room > 0.0 and pole_beta > -nu_floor:
        for e in range(n):
            if free[e]:
                out[e] = max(quadratic_log_root(a[e], beta[e] - beta_ref + nu_floor, c[e]), eps)
        out[best] += room


@njit(**_JIT)
def _simplex_columns(a, beta, c, free, target, eps, rtol, max_iter, out):
    n, n_groups = beta.shape
    a_g = np.empty(n)
    beta_g = np.empty(n)
    c_g = np.empty(n)
    free_g = np.empty(n, dtype=np.bool_)
    h = np.zeros(n)
    for g in range(n_groups):
        for e in range(n):
            a_g[e] = a[e, g]
            beta_g[e] = beta[e, g]
            c_g[e] = c[e, g]
            free_g[e] = free[e, g]
            h[e] = 0.0
        simplex_root(a_g, beta_g, c_g, free_g, n, target[g], eps, h, None, rtol, max_iter)
        for e in range(n):
            out[e, g] = h[e]


def simplex_minimiser(a, beta, c, free, target, eps, rtol=1e-13, max_iter=200):
    """Minimise ``Σ_k a h² + β h − c log h`` per column subject to ``Σ_free h = target``.

    :func:`simplex_root` for every column.

    Parameters
    ----------
    a, beta, c : ndarray of shape (n_entries, n_groups)
        Surrogate coefficients (``a`` and ``c`` may be any arrays broadcastable to
        ``beta``'s shape).
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
    beta = np.asarray(beta, dtype=np.float64)
    shape = np.broadcast_shapes(np.shape(a), beta.shape, np.shape(c), np.shape(free))

    def full(value, dtype=np.float64):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=dtype), shape))

    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target, dtype=np.float64), shape[1:]))
    out = np.zeros(shape)
    _simplex_columns(
        full(a),
        full(beta),
        full(c),
        full(free, np.bool_),
        target,
        float(eps),
        float(rtol),
        int(max_iter),
        out,
    )
    return out
