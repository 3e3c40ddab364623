"""The fit loop of SmoothNMF: starts, the best of several starts, the iterations.

- :func:`raw_starts` draws the unconstrained starts (vertex starts in G's columns, NNDSVD-a,
  random), one per method name, in order from one generator;
- :func:`best_of_starts` runs several starts briefly (on threads) and continues the best;
- :func:`run_updates` is the loop itself: H step, W step, the extrapolated trial, the
  objective and the stopping test.

The maths of the steps is in docs/solver.md, the starts and the extrapolation in
docs/starts.md.
"""

import copy
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from espm_cli.solver.initialization import (element_abundances, make_feasible, nndsvda,
                                            project_spectra, random_start, vertex_start)

logger = logging.getLogger(__name__)

INIT_ITERATIONS = 10  # iterations each of several starts runs before the best is kept
_SHRINK_FLOOR = 0.5  # an extrapolated entry keeps at least half its value
_TIE = 1e-9  # relative difference of objectives under which two starts tie


def raw_starts(methods, backend, data, X, G, identity_G, k, rng, eps, shape_2d=None):
    """Unconstrained starts (W, H), one per method name, drawn in order from ``rng``."""
    starts = []
    abundances = None
    pixel_totals = None
    for method in methods:
        if method in ("spa", "kmeans"):
            if abundances is None:
                counts = data.csr if data.is_sparse else data.dense  # (c, p)
                pixel_totals = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
                if identity_G:
                    abundances = data.csr if data.is_sparse else data.dense
                else:
                    identity = np.eye(G.shape[1])
                    abundances = element_abundances(
                        lambda A: backend.h_step(data, G, identity, A, eps=eps), G,
                        np.asarray(data.channel_totals, dtype=np.float64), pixel_totals)
            starts.append(vertex_start(method, abundances, pixel_totals, k, rng,
                                       column_sums=G.sum(axis=0), eps=eps, shape_2d=shape_2d))
        else:
            counts = data.csr if data.is_sparse else data.dense
            start = nndsvda if method == "nndsvda" else random_start
            spectra, H = start(counts.astype(np.float64) if data.is_sparse else counts, k, rng)
            starts.append((spectra if identity_G else project_spectra(G, spectra), H))
    return starts


def _independent(data):
    """A view of the prepared counts with its own step cache (for a parallel start)."""
    if not hasattr(data, "_cache"):
        return data
    view = copy.copy(data)
    view._cache = {}
    return view


def best_of_starts(backend, data, G, starts, settings, *, max_iter, tol, verbose, callback,
                    extrapolate=False):
    """Run each start briefly (in parallel), continue the best to convergence.

    With one start this is :func:`run_updates`. Otherwise every start runs
    ``min(INIT_ITERATIONS, max_iter)`` iterations on its own thread; the lowest objective
    wins (ties: the earliest start), and its run goes on from there, its loss history
    continuing, up to ``max_iter`` iterations in all.

    Returns
    -------
    W, H, losses, initial, converged
        As :func:`run_updates`, for the start kept.
    objectives : ndarray of shape (n_starts,)
        Each start's objective after its short run.
    best : int
    """
    if len(starts) == 1:
        W, H, losses, initial, converged = run_updates(
            backend, data, G, *starts[0], settings, max_iter=max_iter, tol=tol,
            update_W=True, verbose=verbose, callback=callback, extrapolate=extrapolate)
        return W, H, losses, initial, converged, np.array([losses[-1, -1]]), 0
    budget = min(INIT_ITERATIONS, max_iter)

    def short_run(start):
        return run_updates(backend, _independent(data), G, *start, settings,
                            max_iter=budget, tol=tol, update_W=True, verbose=0,
                            warn_at_max_iter=False, extrapolate=extrapolate)

    workers = min(len(starts), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="espm-start") as pool:
        runs = list(pool.map(short_run, starts))
    objectives = np.array([run[2][-1, -1] for run in runs])
    # ties (two starts that found the same phases, often in another order) go to the
    # earliest start, whatever the rounding of the backend
    best = int(np.flatnonzero(objectives <= objectives.min() + _TIE * abs(objectives.min()))[0])
    W, H, losses, initial, converged = runs[best]
    logger.info("start %d of %d kept (objectives after %d iterations: %s)", best + 1,
                len(starts), budget, ", ".join(f"{value:.8g}" for value in objectives))
    used = losses.shape[0]
    # the callback sees the kept run's first iterations as if it had run alone (a stop
    # request among them ends the fit where the short run ended)
    stopped = callback is not None and any(bool(callback(iteration + 1, losses[iteration]))
                                           for iteration in range(used))
    if stopped:
        converged = False
    elif not converged and used < max_iter:
        more = None if callback is None else (lambda n, row: callback(n + used, row))
        W, H, tail, _, converged = run_updates(
            backend, data, G, W, H, settings, max_iter=max_iter - used, tol=tol,
            update_W=True, verbose=verbose, callback=more, extrapolate=extrapolate)
        losses = np.vstack([losses, tail])
    elif not converged:
        warnings.warn(f"SmoothNMF stopped at max_iter={max_iter} before the objective's "
                      f"relative decrease fell below tol={tol}; raise max_iter or tol.",
                      ConvergenceWarning, stacklevel=3)
    return W, H, losses, initial, converged, objectives, best


def run_updates(backend, data, G, W, H, settings, *, max_iter, tol, update_W, verbose,
                 callback=None, warn_at_max_iter=True, extrapolate=False):
    """The fit loop: H step, W step, (extrapolated trial,) objective, stopping test.

    With ``extrapolate``, after each iteration the point ``x + β (x - x_before)`` (W and H,
    projected onto the constraints) is tried first and kept when it lowers F below the
    last kept point by more than the stopping threshold; otherwise the iteration's own
    point is evaluated and the lower of the two kept. β grows by 1.5 (to at most 1) after
    a kept trial and halves otherwise. Every kept point lowers F, so the objective never
    increases (docs/starts.md).

    Returns
    -------
    W, H : ndarrays
    losses : ndarray of shape (n_iter, 4)
    initial : ndarray of shape (4,)
    converged : bool
    """
    regularisation = {name: settings[name] for name in ("shape_2d", "lambda_L", "mu",
                                                         "epsilon_reg")}

    def objective(W, H):
        # With an ``evaluate``, the pass that gives F also gives the next H step's
        # statistics: an explicit workspace, used once by the step that follows.
        if backend.evaluate is None:
            terms, workspace = backend.objective_terms(data, G, W, H, **regularisation), None
        else:
            terms, workspace = backend.evaluate(data, G, W, H, **regularisation)
        return np.append(terms, terms.sum()), workspace

    initial, workspace = objective(W, H)
    losses = []
    previous = initial[-1]
    converged = False
    extrapolation = 0.5
    W_before, H_before = W, H
    for iteration in range(max_iter):
        shared = {} if workspace is None else {"workspace": workspace}
        H = backend.h_step(data, G, W, H, simplex=settings["simplex"] == "H",
                           fixed=settings["fixed_H"], eps=settings["eps"], **regularisation,
                           **shared)
        if update_W:
            W = backend.w_step(data, G, W, H, simplex_rows=settings["simplex_rows"],
                               fixed=settings["fixed_W"], eps=settings["eps"])
        if extrapolate and iteration > 0:
            # Try the extrapolated point first and keep it when it lowers F below the last
            # kept point (Ang & Gillis 2019): then its pass feeds the next H step and the
            # iteration costs no more than a plain one. Else fall back on the MU point,
            # which the majorization guarantees is no worse.
            W_e, H_e = _extrapolate(G, W, H, W_before, H_before, extrapolation, settings,
                                    update_W)
            trial, trial_workspace = objective(W_e, H_e)
            W_before, H_before = W, H
            if trial[-1] < previous - tol * abs(previous):
                kept = True
            else:  # not clearly better: compare with the MU point (the stopping test must
                # not end the fit on a poor trial)
                row, workspace = objective(W, H)
                kept = trial[-1] < row[-1]
            if kept:
                W, H, row, workspace = W_e, H_e, trial, trial_workspace
                extrapolation = min(1.0, 1.5 * extrapolation)
            else:
                extrapolation *= 0.5
        else:
            row, workspace = objective(W, H)
            W_before, H_before = W, H
        losses.append(row)
        current = row[-1]
        if verbose:
            logger.info("iteration %d: objective %.10g", iteration + 1, current)
        stop_requested = callback is not None and bool(callback(iteration + 1, losses[-1]))
        if previous - current <= tol * abs(previous):
            converged = True
            break
        if stop_requested:
            logger.info("stopped by the callback after iteration %d", iteration + 1)
            break
        previous = current
    else:
        if warn_at_max_iter:
            warnings.warn(f"SmoothNMF stopped at max_iter={max_iter} before the objective's "
                          f"relative decrease fell below tol={tol}; raise max_iter or tol.",
                          ConvergenceWarning, stacklevel=3)
    return W, H, np.array(losses), initial, converged


def _extrapolate(G, W, H, W_before, H_before, step, settings, update_W):
    """W + step (W - W_before), likewise H, projected back onto the constraints."""
    dtype = H.dtype
    # An entry may at most halve: one pushed to the bound would take a
    # multiplicative update hundreds of iterations to leave it.
    H_e = np.maximum(H + step * (H - H_before), _SHRINK_FLOOR * H)
    W_e = np.maximum(W + step * (W - W_before), _SHRINK_FLOOR * W) if update_W else W
    W_e, H_e = make_feasible(G, W_e, H_e, 0.0, simplex=settings["simplex"],
                             simplex_rows=settings["simplex_rows"] if update_W else None,
                             fixed_W=settings["fixed_W"] if update_W else None,
                             fixed_H=settings["fixed_H"], eps=settings["eps"], rescale=False)
    return W_e.astype(dtype), H_e.astype(dtype)
