"""The fit loop of SmoothNMF: starts, the best of several starts, the iterations.

- :func:`raw_starts` draws the unconstrained starts (vertex starts in G's columns, NNDSVD-a,
  random), one per method name, in order from one generator;
- :func:`best_of_starts` runs several starts to convergence (on threads), keeps the best;
- :func:`run_updates` is the loop itself: H step, W step, the extrapolated trial, the
  objective and the stopping test.

The maths of the steps is in docs/solver.md, the starts and the extrapolation in
docs/starts.md.
"""

import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from espm_cli.solver.initialization import (
    element_abundances,
    make_feasible,
    nndsvda,
    project_spectra,
    random_start,
    vertex_start,
)

logger = logging.getLogger(__name__)

_SHRINK_FLOOR = 0.5  # an extrapolated entry keeps at least half its value
_TIE = 1e-9  # relative difference of objectives under which two starts tie


def raw_starts(methods, backend, data, G, identity_G, k, rng, eps, shape_2d=None):
    """Unconstrained starts (W, H), one per method name, drawn in order from ``rng``."""
    counts = None  # (c, p), made only for the starts that read the counts themselves

    def data_counts():
        nonlocal counts
        if counts is None:
            counts = data.csr if data.is_sparse else data.dense
        return counts

    starts = []
    abundances = pixel_totals = None
    for method in methods:
        if method in ("spa", "kmeans"):
            if abundances is None:  # each pixel in G's columns, once for every vertex start
                if hasattr(data, "pixel_totals"):  # without a (c, p) copy of the counts
                    pixel_totals = np.asarray(data.pixel_totals, dtype=np.float64)
                else:
                    pixel_totals = np.asarray(data_counts().sum(axis=0), dtype=np.float64).ravel()
                if identity_G:
                    abundances = data_counts()
                else:
                    identity = np.eye(G.shape[1])
                    abundances = element_abundances(
                        lambda A: backend.h_step(data, G, identity, A, eps=eps),  # noqa: B023 (called here, before the next pass)
                        G,
                        np.asarray(data.channel_totals, dtype=np.float64),
                        pixel_totals,
                    )
            starts.append(
                vertex_start(
                    method,
                    abundances,
                    pixel_totals,
                    k,
                    rng,
                    column_sums=G.sum(axis=0),
                    eps=eps,
                    shape_2d=shape_2d,
                )
            )
        else:
            start = nndsvda if method == "nndsvda" else random_start
            spectra, H = start(data_counts().astype(np.float64) if data.is_sparse else data_counts(), k, rng)
            starts.append((spectra if identity_G else project_spectra(G, spectra), H))
    return starts


def best_of_starts(
    backend, data, G, starts, settings, *, max_iter, tol, verbose, callback, extrapolate=False, loop=None
):
    """Run every start to convergence (in parallel), keep the lowest objective.

    With one start this is :func:`run_updates`. Otherwise each start runs on its own thread
    on the same prepared data (steps share work only through explicit workspaces), to
    ``tol`` or ``max_iter``; the lowest final objective wins (ties within 1e-9 relative:
    the earliest start, whatever the backend's rounding).
    Full runs, not short ones: a start that converges slowly can end lower (measured on
    the real files, docs/starts.md). ``callback`` follows the first start; a stop it
    requests stops every start, and the first start's run is kept. ``loop`` is the
    function that runs one start (:func:`run_updates` when None; the gradient solvers'
    loop of :mod:`espm_cli.solver.gradient` has its signature).

    Returns
    -------
    W, H, losses, initial, converged
        As :func:`run_updates`, for the start kept.
    objectives : ndarray of shape (n_starts,)
        Each start's final objective.
    best : int
    """
    run_updates_ = run_updates if loop is None else loop
    if len(starts) == 1:
        W, H, losses, initial, converged = run_updates_(
            backend,
            data,
            G,
            *starts[0],
            settings,
            max_iter=max_iter,
            tol=tol,
            update_W=True,
            verbose=verbose,
            callback=callback,
            extrapolate=extrapolate,
        )
        return W, H, losses, initial, converged, np.array([losses[-1, -1]]), 0
    stop = threading.Event()

    def follow_first(n_iter, row):
        if callback is not None and bool(callback(n_iter, row)):
            stop.set()
        return stop.is_set()

    def run(index):
        watch = follow_first if index == 0 else (lambda n_iter, row: stop.is_set())
        return run_updates_(
            backend,
            data,
            G,
            *starts[index],
            settings,
            max_iter=max_iter,
            tol=tol,
            update_W=True,
            verbose=verbose if index == 0 else 0,
            callback=watch,
            warn_at_max_iter=False,
            extrapolate=extrapolate,
        )

    # the first start runs on the calling thread, so that the callback (and a Ctrl-C
    # handler it reads) lives where the caller does; the others on a small pool
    workers = max(1, min(len(starts) - 1, (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="espm-start") as pool:
        others = [pool.submit(run, index) for index in range(1, len(starts))]
        runs = [run(0)] + [future.result() for future in others]
    objectives = np.array([run[2][-1, -1] for run in runs])
    best = int(np.flatnonzero(objectives <= objectives.min() + _TIE * abs(objectives.min()))[0])
    if stop.is_set():  # stopped: the first start, the one the callback saw (deterministic)
        best = 0
    W, H, losses, initial, converged = runs[best]
    logger.info(
        "start %d of %d kept (final objectives: %s)",
        best + 1,
        len(starts),
        ", ".join(f"{value:.8g}" for value in objectives),
    )
    if stop.is_set():
        converged = False
    elif not converged:
        warn_not_converged(max_iter, tol, stacklevel=3)
    return W, H, losses, initial, converged, objectives, best


def warn_not_converged(max_iter, tol, stacklevel):
    """The ConvergenceWarning of a fit that reached ``max_iter`` before ``tol``.

    ``stacklevel`` counts from the caller of this function, as for :func:`warnings.warn`.
    """
    warnings.warn(
        f"SmoothNMF stopped at max_iter={max_iter} before the objective's "
        f"relative decrease fell below tol={tol}; raise max_iter or tol.",
        ConvergenceWarning,
        stacklevel=stacklevel + 1,
    )


def regularisation_settings(settings):
    """The regularisers' settings the steps and the objective take (``l1`` when set)."""
    names = ("shape_2d", "lambda_L", "mu", "epsilon_reg") + (("l1",) if "l1" in settings else ())
    return {name: settings[name] for name in names}


def run_updates(
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
):
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
    regularisation = regularisation_settings(settings)
    device = backend.to_device is not None
    if device:  # a device backend: G, W, H and the held entries go there once, W, H come back
        G, W, H = (backend.to_device(data, array) for array in (G, W, H))
        settings = {
            **settings,
            **{name: backend.to_device(data, settings[name]) for name in ("fixed_W", "fixed_H")},
        }
    extrapolated_point = backend.extrapolated_point or _extrapolate

    chained = backend.shares_steps

    def objective(W, H, workspace=None):
        # With an ``evaluate``, the pass that gives F also gives the next H step's
        # statistics: an explicit workspace, used once by the step that follows.
        if backend.evaluate is None:
            terms, workspace = backend.objective_terms(data, G, W, H, **regularisation), None
        elif chained:
            terms, workspace = backend.evaluate(data, G, W, H, workspace=workspace, **regularisation)
        else:
            terms, workspace = backend.evaluate(data, G, W, H, **regularisation)
        return np.append(terms, terms.sum()), workspace

    def shared(workspace, share):
        options = {} if workspace is None else {"workspace": workspace}
        if chained and share:
            options["share"] = True
        return options

    initial, workspace = objective(W, H)
    losses = []
    previous = initial[-1]
    converged = False
    extrapolation = 0.5
    W_before, H_before = W, H
    for iteration in range(max_iter):
        H = backend.h_step(
            data,
            G,
            W,
            H,
            simplex=settings["simplex"] == "H",
            fixed=settings["fixed_H"],
            eps=settings["eps"],
            **regularisation,
            **shared(workspace, update_W),
        )
        workspace = None
        if chained and update_W:
            H, workspace = H
        if update_W:
            W = backend.w_step(
                data,
                G,
                W,
                H,
                simplex_rows=settings["simplex_rows"],
                fixed=settings["fixed_W"],
                eps=settings["eps"],
                **shared(workspace, True),
            )
            workspace = None
            if chained:
                W, workspace = W
        if extrapolate and iteration > 0:
            # Try the extrapolated point first and keep it when it lowers F below the last
            # kept point (Ang & Gillis 2019): then its pass feeds the next H step and the
            # iteration costs no more than a plain one. Else fall back on the MU point,
            # which the majorization guarantees is no worse.
            W_e, H_e = extrapolated_point(G, W, H, W_before, H_before, extrapolation, settings, update_W)
            trial, trial_workspace = objective(W_e, H_e)
            W_before, H_before = W, H
            if trial[-1] < previous - tol * abs(previous):
                kept = True
            else:  # not clearly better: compare with the MU point (the stopping test must
                # not end the fit on a poor trial)
                row, workspace = objective(W, H, workspace)
                kept = trial[-1] < row[-1]
            if kept:
                W, H, row, workspace = W_e, H_e, trial, trial_workspace
                extrapolation = min(1.0, 1.5 * extrapolation)
            else:
                extrapolation *= 0.5
        else:
            row, workspace = objective(W, H, workspace)
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
            warn_not_converged(max_iter, tol, stacklevel=3)
    if device:
        W, H = backend.to_host(W), backend.to_host(H)
    return W, H, np.array(losses), initial, converged


def _extrapolate(G, W, H, W_before, H_before, step, settings, update_W):
    """W + step (W - W_before), likewise H, projected back onto the constraints."""
    dtype = H.dtype
    # An entry may at most halve: one pushed to the bound would take a
    # multiplicative update hundreds of iterations to leave it.
    H_e = np.maximum(H + step * (H - H_before), _SHRINK_FLOOR * H)
    W_e = np.maximum(W + step * (W - W_before), _SHRINK_FLOOR * W) if update_W else W
    W_e, H_e = make_feasible(
        G,
        W_e,
        H_e,
        0.0,
        simplex=settings["simplex"],
        simplex_rows=settings["simplex_rows"] if update_W else None,
        fixed_W=settings["fixed_W"] if update_W else None,
        fixed_H=settings["fixed_H"],
        eps=settings["eps"],
        rescale=False,
    )
    return W_e.astype(dtype), H_e.astype(dtype)
