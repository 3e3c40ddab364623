"""The β-divergence family: names, values and the pieces of its majorize-minimize step.

    d_β(x | y) = (x^β + (β − 1) y^β − β x y^(β−1)) / (β (β − 1))

with the limits d_1(x | y) = x log(x / y) − x + y (generalised Kullback-Leibler, Poisson
counts) and d_0(x | y) = x / y − log(x / y) − 1 (Itakura-Saito); d_2 = (x − y)² / 2
(Frobenius). Févotte & Idier (2011) split d_β into a convex and a concave part in y; the
update rules majorize the convex part by Jensen's inequality and the concave part by its
tangent (docs/solver.md). For the entry h = t h⁰ of a factor this gives the derivative of
the data part of the surrogate

    P t^e1 − Q t^e2,    e1 = max(β − 1, 0),  e2 = min(β − 2, 0),

with P = Σ (weights) y^(β−1) and Q = Σ (weights) x y^(β−2) computed at the current
point: :func:`mm_exponents`.
"""

import numpy as np
from scipy.special import xlogy

#: Named divergences, as scikit-learn's ``beta_loss``.
BETA_LOSS_NAMES = {"kullback-leibler": 1.0, "frobenius": 2.0, "itakura-saito": 0.0}


def beta_value(beta_loss):
    """β of ``beta_loss`` (a name of :data:`BETA_LOSS_NAMES` or a finite real number).

    Parameters
    ----------
    beta_loss : str or float

    Returns
    -------
    float
    """
    if isinstance(beta_loss, str):
        return BETA_LOSS_NAMES[beta_loss]
    return float(beta_loss)


def divergence_name(beta):
    """The name of the data term in ``loss_names_``: one name per divergence.

    Parameters
    ----------
    beta : float

    Returns
    -------
    str
        ``"kl_divergence"`` (β = 1), ``"frobenius"`` (β = 2, ½‖X − Y‖²), ``"itakura_saito"``
        (β = 0), else ``"beta_divergence"``.
    """
    return {1.0: "kl_divergence", 2.0: "frobenius", 0.0: "itakura_saito"}.get(float(beta), "beta_divergence")


def mm_exponents(beta):
    """Exponents (e1, e2) of the surrogate's derivative ``P t^e1 − Q t^e2`` (see module).

    The minimiser without regularisers is ``t = (Q / P)^γ`` with γ = 1 / (e1 − e2), the
    γ(β) of Févotte & Idier: 1 / (2 − β) for β < 1, 1 for 1 ≤ β ≤ 2, 1 / (β − 1) for β > 2.

    Parameters
    ----------
    beta : float

    Returns
    -------
    e1, e2 : float
    """
    return max(beta - 1.0, 0.0), min(beta - 2.0, 0.0)


def elementwise_divergence(X, Y, beta):
    """d_β(X | Y) entry by entry, in float64.

    Parameters
    ----------
    X : ndarray
        Nonnegative data (> 0 where β ≤ 0).
    Y : ndarray
        Positive model, broadcastable with X.
    beta : float

    Returns
    -------
    ndarray of float64
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if beta == 1.0:
        return xlogy(X, X / Y) - X + Y
    if beta == 0.0:
        ratio = X / Y
        return ratio - np.log(ratio) - 1.0
    if beta == 2.0:
        return 0.5 * (X - Y) ** 2
    # Written around the ratio r = x / y: y^β (r^β + β − 1 − β r) / (β(β−1)) keeps the
    # cancellation near x = y to the size of y^β, not of x^β.
    ratio = X / Y
    with np.errstate(divide="ignore", invalid="ignore"):
        value = Y**beta * (np.power(ratio, beta) + (beta - 1.0) - beta * ratio)
    return value / (beta * (beta - 1.0))


def zero_entries_message(beta, n_zero):
    """The error for β ≤ 0 on data with zeros (one line: what is wrong, what to do)."""
    return (
        f"beta_loss={beta:g} is undefined where X is 0 and X has {n_zero} zero "
        f"{'entry' if n_zero == 1 else 'entries'} (among the entries that are not masked); "
        "use a beta_loss > 0 (e.g. 'kullback-leibler' for counts), or mask those entries "
        "(mask=, or NaN)."
    )


def is_closed_form(beta):
    """Whether the surrogate with the quadratic Laplacian term keeps the quadratic-log form.

    For β = 1 and β = 2 every update (with Laplacian, sparsity and simplex) is a root of a
    quadratic (:mod:`espm_cli.solver.simplex`); other β need a 1-D root solve per entry.
    """
    return beta in (1.0, 2.0)
