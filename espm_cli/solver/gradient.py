"""Gradient solvers of SmoothNMF: projected gradient (Armijo) and Adagrad.

Both minimise the same F as the multiplicative steps (docs/solver.md), on the general
data path (:class:`~espm_cli.solver.masked_counts.MaskedCounts`: every β, masks), by
alternating blocks: H with W fixed, then W with H fixed. The gradient of F is built from
the statistics the MM steps use, P and Q (``∂/∂H Σ M d_β(X | BH) = P − Q``, since
``d_β'(y) = y^(β−1) − x y^(β−2)``), plus the regularisers':

    ∇_H F = (P_H − Q_H) + λ (D ⊙ H − A-neighbour sums of H) + μ_k / (H + ε_r) + l1_k
    ∇_W F = Gᵀ (P_W − Q_W)

On H >= 0 the L1 term Σ l1_k H_kp is linear, so its proximal step followed by the
projection onto the feasible set is exactly the projection of ``H − t (∇f + l1)``
(soft-thresholding then clipping at ``eps`` is the same map when there is no simplex).

- ``"pgd"``: ``x⁺ = Π(x − t ∇F)`` with Π the Euclidean projection of
  :mod:`espm_cli.solver.projections`; the first step of each block is 1/L for a secant
  estimate L of the gradient's Lipschitz constant, later ones the Barzilai-Borwein step of
  the block's last move, and every step is accepted
  only when the Armijo condition ``F(x⁺) <= F(x) + σ ⟨∇F, x⁺ − x⟩`` holds (backtracking
  by factors of 4). ``⟨∇F, x⁺ − x⟩ <= −‖x⁺ − x‖²/t``
  for a projection, so every accepted step lowers F; when no step is accepted the block
  is left as it was. F never increases.
- ``"adagrad"``: ``x⁺ = Π(x − r g / sqrt(Σ_past g²))`` entry by entry, r =
  ``learning_rate`` times the block's mean absolute entry at the start (so the rate is a fraction
  of the factor's scale, the same at any unit of the counts). Not monotone: the loop stops
  on ``|ΔF| <= tol |F|``, at ``max_iter``, or (with a ConvergenceWarning, keeping the last
  finite point) when F stops being finite.
"""

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from espm_cli.solver.beta_steps import _is_identity, evaluate
from espm_cli.solver.fit_loop import regularisation_settings, warn_not_converged
from espm_cli.solver.grid import grid_degrees, neighbour_sum
from espm_cli.solver.masked_counts import statistics
from espm_cli.solver.projections import project_factor
from espm_cli.solver.reference import sparsity_weights

logger = logging.getLogger(__name__)

_ARMIJO = 1e-4  # σ of the sufficient decrease
_MAX_BACKTRACKS = 20  # reductions of the step before a block is left as it was
_BACKTRACK = 0.25  # the step's reduction per failed trial
_SECANT_SHIFT = 1e-4  # relative size of the probe step of the Lipschitz estimate


def h_gradient(stats, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0, l1=None):
    """∇_H F from the H statistics at (W, H), in float64.

    Parameters
    ----------
    stats : dict
        With ``"P_H"`` and ``"Q_H"`` (:func:`masked_counts.statistics` with ``for_H``).
    H : ndarray of shape (k, p)
    shape_2d, lambda_L, mu, epsilon_reg, l1
        The regularisers (``l1`` (k,) or None).

    Returns
    -------
    ndarray of shape (k, p)
    """
    H64 = H.astype(np.float64)
    gradient = stats["P_H"].astype(np.float64) - stats["Q_H"].astype(np.float64)
    if lambda_L > 0 and shape_2d is not None:
        gradient += lambda_L * (grid_degrees(shape_2d)[None, :] * H64 - neighbour_sum(H64, shape_2d))
    mu = sparsity_weights(mu, H.shape[0])
    if np.any(mu > 0):
        gradient += mu[:, None] / (H64 + epsilon_reg)
    if l1 is not None:
        gradient += np.asarray(l1, dtype=np.float64)[:, None]
    return gradient


def w_gradient(data, G, W, H):
    """∇_W F at (W, H), in float64 (the regularisers do not involve W).

    Parameters
    ----------
    data : MaskedCounts
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
    H : ndarray of shape (k, p)

    Returns
    -------
    ndarray of shape (m, k)
    """
    identity = _is_identity(G)
    stats = statistics(data, W if identity else G @ W, H, for_W=True)
    difference = stats["P_W"].astype(np.float64) - stats["Q_W"].astype(np.float64)
    return difference if identity else G.T.astype(np.float64) @ difference


class _Block:
    """One factor's side of the alternation: its gradient, projection and F along it."""

    def __init__(self, name, data, G, settings, regularisation):
        self.name = name
        self.data, self.G, self.regularisation = data, G, regularisation
        if name == "H":
            self.fixed = settings["fixed_H"]
            self.simplex_rows = None
            self.simplex_all = settings["simplex"] == "H"
        else:
            self.fixed = settings["fixed_W"]
            self.simplex_rows = settings["simplex_rows"]
            self.simplex_all = False
        self.eps = settings["eps"]
        self.step = None  # pgd: the step to try first
        self.last = None  # pgd: (values, gradient) where the last step started
        self.accepted = None  # pgd: the last accepted step
        self.squares = None  # adagrad: Σ g² per entry
        self.rate = None  # adagrad: r

    def project(self, values):
        rows = np.ones(values.shape[0], bool) if self.simplex_all else self.simplex_rows
        return project_factor(values, fixed=self.fixed, simplex_rows=rows, eps=self.eps)

    def point(self, W, H, values):
        """(W, H) with this block replaced by ``values``."""
        return (W, values) if self.name == "H" else (values, H)

    def evaluate(self, W, H):
        terms, workspace = evaluate(self.data, self.G, W, H, **self.regularisation)
        return np.append(terms, terms.sum()), workspace

    def gradient(self, W, H, workspace):
        if self.name == "H":
            return h_gradient(workspace, H, **self.regularisation)
        return w_gradient(self.data, self.G, W, H)

    def free_gradient(self, gradient):
        """The gradient with the held entries zeroed (they do not move)."""
        return gradient if self.fixed is None else np.where(self.fixed < 0, gradient, 0.0)


def _lipschitz_step(block, W, H, values, gradient, workspace):
    """1/L, L a secant estimate ‖∇F(x₁) − ∇F(x)‖ / ‖x₁ − x‖ along the projected gradient."""
    scale = np.linalg.norm(values) / max(np.linalg.norm(gradient), 1e-300)
    probe = block.project(values - _SECANT_SHIFT * scale * gradient)
    moved = np.linalg.norm(probe - values)
    if moved == 0.0:
        return scale
    W1, H1 = block.point(W, H, probe.astype(values.dtype))
    probe_workspace = None
    if block.name == "H":
        probe_workspace = statistics(
            block.data, block.G @ W1 if not _is_identity(block.G) else W1, H1, for_H=True
        )
    change = np.linalg.norm(block.free_gradient(block.gradient(W1, H1, probe_workspace) - gradient))
    return moved / change if change > 0 else scale


def pgd_step(block, W, H, row, workspace):
    """One projected-gradient step of a block with Armijo backtracking (never increases F).

    Returns
    -------
    W, H, row, workspace
        The new point, its objective row (terms and total) and its H statistics.
    """
    values = H if block.name == "H" else W
    gradient = block.free_gradient(block.gradient(W, H, workspace))
    values64 = values.astype(np.float64)
    if block.step is None:
        block.step = block.accepted = _lipschitz_step(block, W, H, values, gradient, workspace)
    elif block.last is not None:
        # Barzilai-Borwein: the secant step of the last move of this block (Armijo below
        # keeps the decrease; a non-positive curvature keeps the doubled last step)
        moved, change = values64 - block.last[0], gradient - block.last[1]
        curvature = float(np.sum(moved * change))
        if curvature > 0:
            block.step = float(np.sum(moved * moved)) / curvature
    block.last = (values64, gradient)
    step = block.step
    for _ in range(_MAX_BACKTRACKS):
        trial = block.project(values64 - step * gradient)
        decrease = float(np.sum(gradient * (trial - values64)))
        if decrease < 0:
            W_t, H_t = block.point(W, H, trial.astype(values.dtype))
            trial_row, trial_workspace = block.evaluate(W_t, H_t)
            if np.isfinite(trial_row[-1]) and trial_row[-1] <= row[-1] + _ARMIJO * decrease:
                block.step = block.accepted = step
                return W_t, H_t, trial_row, trial_workspace
        elif decrease == 0.0:
            break  # stationary for this block: nothing to gain
        step *= _BACKTRACK
    block.step = block.accepted = step
    return W, H, row, workspace


def adagrad_step(block, W, H, row, workspace, learning_rate):
    """One projected Adagrad step of a block (not monotone).

    Returns
    -------
    W, H, row, workspace
    """
    values = H if block.name == "H" else W
    gradient = block.free_gradient(block.gradient(W, H, workspace))
    if block.squares is None:
        block.squares = np.zeros(values.shape)
        free = values if block.fixed is None else values[block.fixed < 0]
        scale = float(np.mean(np.abs(free))) if free.size else 0.0
        block.rate = learning_rate * (scale if scale > 0 else 1.0)
    block.squares += gradient**2
    scaled = np.divide(gradient, np.sqrt(block.squares), out=np.zeros_like(gradient), where=block.squares > 0)
    updated = block.project(values.astype(np.float64) - block.rate * scaled)
    W_new, H_new = block.point(W, H, updated.astype(values.dtype))
    new_row, new_workspace = block.evaluate(W_new, H_new)
    return W_new, H_new, new_row, new_workspace


def run_gradient_updates(
    backend,
    data,
    G,
    W,
    H,
    settings,
    *,
    max_iter,
    tol,
    update_W,
    verbose,
    callback=None,
    warn_at_max_iter=True,
    extrapolate=False,
    solver="pgd",
    learning_rate=0.1,
):
    """The fit loop of the gradient solvers, with :func:`fit_loop.run_updates`'s signature.

    ``backend`` and ``extrapolate`` are not used (the steps are this module's own, on the
    general data path; extrapolation is the multiplicative solver's).

    Returns
    -------
    W, H, losses, initial, converged
        As :func:`fit_loop.run_updates`.
    """
    regularisation = regularisation_settings(settings)
    blocks = [_Block("H", data, G, settings, regularisation)]
    if update_W:
        blocks.append(_Block("W", data, G, settings, regularisation))
    step = STEP_RULES[solver]
    row, workspace = blocks[0].evaluate(W, H)
    initial = row
    losses = []
    converged = False
    previous = row[-1]
    monotone = solver == "pgd"
    for iteration in range(max_iter):
        W_before, H_before, row_before = W, H, row
        for block in blocks:
            if solver == "adagrad":
                W, H, row, workspace = step(block, W, H, row, workspace, learning_rate)
            else:
                W, H, row, workspace = step(block, W, H, row, workspace)
        if not np.all(np.isfinite(row)):
            warnings.warn(
                f"solver={solver!r} left the finite range (objective {row[-1]}) at "
                f"iteration {iteration + 1}; the last finite point is kept. Lower "
                "learning_rate.",
                ConvergenceWarning,
                stacklevel=3,
            )
            W, H, row = W_before, H_before, row_before
            break
        losses.append(row)
        current = row[-1]
        if verbose:
            logger.info("iteration %d: objective %.10g", iteration + 1, current)
        stop_requested = callback is not None and bool(callback(iteration + 1, row))
        change = previous - current if monotone else abs(previous - current)
        if change <= tol * abs(previous):
            converged = True
            break
        if stop_requested:
            logger.info("stopped by the callback after iteration %d", iteration + 1)
            break
        previous = current
    else:
        if warn_at_max_iter:
            warn_not_converged(max_iter, tol, stacklevel=3)
    if not losses:
        losses.append(initial)
    return W, H, np.array(losses), initial, converged


#: solver name -> the step of one block (the multiplicative "mu" steps are the backends').
STEP_RULES = {"pgd": pgd_step, "adagrad": adagrad_step}
