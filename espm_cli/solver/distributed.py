"""The exact SmoothNMF fit on a dask.distributed cluster: a map-reduce per iteration.

The pixels are cut into blocks of whole image rows. Each block's nonzeros are prepared
once on a worker (with one empty row above and below for the Laplacian's halo) and stay
there; so does the block's H. One iteration is one task per block and one reduction:

- out: W (m x k) and, worker to worker, the first and last rows of the neighbouring
  blocks' H (the halo);
- on the worker, at (W, H): the block's share of the objective F(W, H) (divergence,
  its Laplacian edges, its log sparsity), the H step (exactly the full H step restricted
  to the block: the step updates every pixel from the previous H, and a block's pixels
  need only their own counts and the previous H of their 4 neighbours), then the
  W-step statistics at the new H: the numerator ``W ⊙ Gᵀ((X / G W H) Hᵀ)`` (m x k) and
  the row sums of H (k);
- back: those statistics and the objective sums, reduced on the client in block order.

The client then takes the W step (bounds, simplex) and the stopping test. The objective
of iteration t comes back with the task of iteration t + 1 (it is F at that task's
input), so the fit stops one map-reduce later than an in-memory fit and keeps the input
of the last task: the same iterates and the same stopping iteration as
``SmoothNMF(extrapolate=False).fit`` from the same start. H is gathered once, at the end.

Tasks are pure functions of their inputs, so a lost worker is either recomputed by dask
(the same values) or ends the fit with one :class:`DistributedFitError`; never a result
made of mismatched blocks. Only the KL loss without masks, fixed entries, ``normalize``
or the extrapolated trial (these need every pixel in one place or are not implemented
here).
"""

import logging
import operator
import time

import numpy as np
import scipy.sparse as sp

from espm_cli.solver.backends import backend_for, get_backend
from espm_cli.solver.blocks import is_lazy, lazy_counts, row_blocks
from espm_cli.solver.constraints import multiplicative_w_update
from espm_cli.solver.estimator import LOSS_NAMES, _physics_matrix
from espm_cli.solver.fit_loop import warn_not_converged
from espm_cli.solver.grid import laplacian_energy
from espm_cli.solver.initialization import make_feasible
from espm_cli.solver.minibatch import fresh_abundances, kl_w_statistics
from espm_cli.solver.missing import find_missing
from espm_cli.solver.reference import sparsity_weights
from espm_cli.solver.validation import check_counts, check_parameters

logger = logging.getLogger(__name__)

__all__ = ["DistributedFitError", "fit_distributed"]

#: Default pixels per block (whole rows are taken): a block's nonzeros and H in memory.
_PIXELS_PER_BLOCK = 1 << 16


class DistributedFitError(RuntimeError):
    """The cluster lost what a distributed fit needed (a worker with its blocks)."""


# --- what runs on the workers ----------------------------------------------------------


class _Block:
    """A block of whole rows with its halo: its prepared counts (halo rows empty)."""

    def __init__(self, counts, rows, halo, nx, backend_name, dtype):
        self.counts = counts  # CSR (own pixels, c)
        self.rows = rows  # (row_start, row_stop) in the image
        self.halo = halo  # (rows above, rows below): 0 or 1 each
        self.nx = nx
        top, bottom = halo
        c = counts.shape[1]
        padded = sp.vstack(
            [sp.csr_matrix((top * nx, c)), counts, sp.csr_matrix((bottom * nx, c))], format="csr"
        )
        self.backend = get_backend(backend_name)
        self.data = self.backend.prepare_counts(padded, np.dtype(dtype))

    @property
    def nbytes(self):
        return int(self.counts.data.nbytes + self.counts.indices.nbytes)


def _load_block(counts, rows, halo, nx, backend_name, dtype):
    if is_lazy(counts):
        counts = lazy_counts(counts)
    counts = sp.csr_matrix(counts)
    values = counts.data
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
        raise ValueError(
            f"X rows {rows[0] * nx}-{rows[1] * nx - 1} hold a NaN, infinite or "
            "negative count; the distributed fit needs finite counts >= 0."
        )
    counts.sort_indices()
    return _Block(counts, rows, halo, nx, backend_name, dtype)


def _fresh_H(block, G, W, simplex, eps):
    return fresh_abundances(block.counts, G, W, simplex, eps).astype(W.dtype)


def _first_row(H, nx):
    return np.ascontiguousarray(H[:, :nx])


def _last_row(H, nx):
    return np.ascontiguousarray(H[:, -nx:])


def _block_iteration(block, G, W, H, above, below, settings, take_step):
    """F's share at (W, H); then, with ``take_step``, the H step and the W statistics.

    ``H`` is the block's H, or the state this function returned the iteration before.
    """
    nx = block.nx
    H = H["H"] if isinstance(H, dict) else H
    top, bottom = block.halo
    parts = [H] if not top else [above, H]
    if bottom:
        parts.append(below)
    H_sub = np.ascontiguousarray(np.concatenate(parts, axis=1)) if len(parts) > 1 else H
    n_rows = H_sub.shape[1] // nx
    regularisation = {
        "shape_2d": (n_rows, nx) if settings["lambda_L"] > 0 else None,
        "lambda_L": settings["lambda_L"],
        "mu": settings["mu"],
        "epsilon_reg": settings["epsilon_reg"],
    }
    backend = block.backend
    if backend.evaluate is None:
        terms, workspace = backend.objective_terms(block.data, G, W, H_sub, **regularisation), None
    else:
        terms, workspace = backend.evaluate(block.data, G, W, H_sub, **regularisation)
    B = G.astype(np.float64) @ W.astype(np.float64)
    b = B.sum(axis=0)
    halo_columns = np.concatenate([H_sub[:, : top * nx], H_sub[:, H_sub.shape[1] - bottom * nx :]], axis=1)
    # the halo pixels have no counts: their model total is all they add to the divergence
    divergence = float(terms[0]) - float(b @ halo_columns.astype(np.float64).sum(axis=1))
    laplacian = 0.0
    if settings["lambda_L"] > 0:  # this block's rows, and the edges to the row below
        own_and_below = H_sub[:, top * nx :]
        laplacian = (
            0.5
            * settings["lambda_L"]
            * (
                laplacian_energy(own_and_below, (own_and_below.shape[1] // nx, nx))
                - (laplacian_energy(below, (1, nx)) if bottom else 0.0)
            )
        )
    mu = sparsity_weights(settings["mu"], H.shape[0])
    log_sparsity = (
        float(mu @ np.sum(np.log(H.astype(np.float64) + settings["epsilon_reg"]), axis=1))
        if np.any(mu > 0)
        else 0.0
    )
    result = {"terms": np.array([divergence, laplacian, log_sparsity])}
    if not take_step:
        return result
    fixed = np.full(H_sub.shape, -1.0)
    fixed[:, : top * nx] = H_sub[:, : top * nx]
    fixed[:, H_sub.shape[1] - bottom * nx :] = H_sub[:, H_sub.shape[1] - bottom * nx :]
    shared = {} if workspace is None else {"workspace": workspace}
    H_new_sub = backend.h_step(
        block.data,
        G,
        W,
        H_sub,
        simplex=settings["simplex"] == "H",
        fixed=fixed if (top or bottom) else None,
        eps=settings["eps"],
        **regularisation,
        **shared,
    )
    H_new = np.ascontiguousarray(H_new_sub[:, top * nx : H_sub.shape[1] - bottom * nx])
    ratio_times_H, row_sums, _ = kl_w_statistics(block.counts, B, H_new)
    result.update(
        H=H_new,
        numerator=W.astype(np.float64) * (G.T.astype(np.float64) @ ratio_times_H),
        row_sums=row_sums,
        first=_first_row(H_new, nx),
        last=_last_row(H_new, nx),
    )
    return result


# --- the client side ----------------------------------------------------------------------


def _row_chunks(X, shape_2d, rows_per_block):
    nx = shape_2d[1]
    return [(lo, hi, X[lo * nx : hi * nx]) for lo, hi in row_blocks(shape_2d, rows_per_block)]


def _checked_counts(estimator, X):
    """X as CSR or dask (p, c); the model and settings; refuses what is not served."""
    check_parameters(estimator.get_params(deep=False))
    if estimator.beta_loss not in ("kullback-leibler", 1, 1.0):
        raise ValueError(
            "the distributed fit serves the KL loss only; fit "
            f"beta_loss={estimator.beta_loss!r} in one process."
        )
    for name in ("mask", "fixed_W", "fixed_H"):
        if getattr(estimator, name) is not None:
            raise ValueError(f"the distributed fit does not take {name}; fit in one process.")
    if estimator.normalize:
        raise ValueError("the distributed fit does not take normalize=True; fit in one process.")
    if estimator.shape_2d is None:
        raise ValueError("the distributed fit needs shape_2d (its blocks are whole image rows).")
    if not is_lazy(X):
        X = check_counts(sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr())
    n_pixels, n_channels = X.shape
    G_full, continuum = _physics_matrix(estimator.G, estimator.G_continuum, n_channels)
    if not G_full.any(axis=1).all():
        raise ValueError(
            "G has all-zero rows; the distributed fit needs them cut off "
            "beforehand (the workflow's fit window does it)."
        )
    settings = estimator._settings(n_pixels, G_full, continuum)
    return X, G_full, settings


def _start(estimator, X, G, settings, n_blocks):
    """W's start from every n-th pixel (about one block's worth), as the mini-batch's."""
    from espm_cli.solver import SmoothNMF

    n_pixels = X.shape[0]
    stride = max(1, n_pixels // max(_PIXELS_PER_BLOCK, 4 * estimator.n_components))
    sample = X[::stride]
    sample = lazy_counts(sample) if is_lazy(sample) else sample
    sample = sp.csr_matrix(sample)
    pattern = find_missing(sample)
    backend, _ = backend_for(estimator.backend, 1.0, pattern)
    data = backend.prepare_counts(sample, np.dtype(estimator.dtype))
    params = {**estimator.get_params(deep=False), "shape_2d": None, "lambda_L": 0.0}
    start = SmoothNMF(**{name: value for name, value in params.items() if name in SmoothNMF().get_params()})
    plain = dict(settings, shape_2d=None, lambda_L=0.0)
    W0, _ = start._starts(backend, data, sample.shape[0], G, None, None, plain)[0]
    return W0


def fit_distributed(estimator, X, client, *, W=None, H=None, rows_per_block=None):
    """Fit a :class:`~espm_cli.solver.SmoothNMF` exactly, on a dask.distributed cluster.

    Parameters
    ----------
    estimator : SmoothNMF
        Its parameters are used (KL loss; no mask, fixed entries, normalize;
        ``extrapolate`` is not applied); its fitted attributes are set.
    X : ndarray, sparse matrix or dask array of shape (n_pixels, n_channels)
        A dask array is read on the workers, a block of rows each.
    client : distributed.Client
    W, H : ndarray, optional
        Start (W (m, k) and H (k, n_pixels), as for ``init="custom"``); by default W from
        ``init`` on every n-th pixel and H from W (each pixel's counts spread over the
        phases), computed on the workers.
    rows_per_block : int, optional
        Image rows per block (default: about 65536 pixels, and at least one block per
        worker).

    Returns
    -------
    estimator
        With ``W_``, ``H_``, ``components_``, ``losses_``, ``initial_losses_``,
        ``n_iter_``, ``converged_``, ``reconstruction_err_``,
        ``bytes_per_iteration_`` (bytes sent to and from the client per iteration, and the
        halo rows passed between workers) and ``iteration_seconds_`` (wall time of each
        map-reduce after the first, which also loads the blocks).

    Raises
    ------
    DistributedFitError
        If the cluster lost a block it could not recompute.
    """
    X, G_full, settings = _checked_counts(estimator, X)
    n_channels = X.shape[1]
    ny, nx = settings["shape_2d"]
    dtype = np.dtype(estimator.dtype)
    k = estimator.n_components
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    if rows_per_block is None:
        rows_per_block = max(1, min(_PIXELS_PER_BLOCK // nx, -(-ny // n_workers)))
    chunks = _row_chunks(X, (ny, nx), rows_per_block)
    n_blocks = len(chunks)
    backend, _ = backend_for(estimator.backend, 1.0, find_missing(sp.csr_matrix((1, n_channels))))
    backend_name = "numba" if backend is get_backend("numba") else "reference"
    G = G_full.astype(dtype)
    try:
        blocks = []
        for lo, hi, part in chunks:
            halo = (1 if lo > 0 else 0, 1 if hi < ny else 0)
            # the block's counts travel in the task itself (a dask array: its graph), so a
            # lost worker's blocks can be rebuilt from it
            blocks.append(
                client.submit(_load_block, part, (lo, hi), halo, nx, backend_name, dtype.name, pure=False)
            )
        if W is None:
            W0 = _start(estimator, X, G, settings, n_blocks)
        else:
            W0 = np.asarray(W, dtype=np.float64)
        if H is None:
            W0 = make_feasible(
                G,
                W0,
                np.ones((k, 1)),
                0.0,
                simplex=settings["simplex"],
                simplex_rows=settings["simplex_rows"],
                fixed_W=None,
                fixed_H=None,
                eps=settings["eps"],
                rescale=False,
            )[0]
            H_blocks = [
                client.submit(_fresh_H, block, G, W0.astype(dtype), settings["simplex"], settings["eps"])
                for block in blocks
            ]
        else:
            total = float(X.sum()) if not is_lazy(X) else float(X.sum().compute())
            W0, H0 = make_feasible(
                G,
                W0,
                np.asarray(H, dtype=np.float64),
                total,
                simplex=settings["simplex"],
                simplex_rows=settings["simplex_rows"],
                fixed_W=None,
                fixed_H=None,
                eps=settings["eps"],
            )
            H_blocks = [
                client.scatter(np.ascontiguousarray(H0[:, lo * nx : hi * nx].astype(dtype)))
                for lo, hi, _ in chunks
            ]
        W_t = W0.astype(dtype)
        G_future = client.scatter(G, broadcast=True)
        firsts = [client.submit(_first_row, Hb, nx) for Hb in H_blocks]
        lasts = [client.submit(_last_row, Hb, nx) for Hb in H_blocks]
        column_sums = G.sum(axis=0, dtype=np.float64)
        losses, initial, converged = [], None, False
        previous = None
        sent = received = 0
        halo_bytes = 2 * (n_blocks - 1) * k * nx * 8
        stamps = [time.perf_counter()]
        for iteration in range(estimator.max_iter + 1):
            last_task = iteration == estimator.max_iter
            W_future = client.scatter(W_t, broadcast=True)
            states = [
                client.submit(
                    _block_iteration,
                    blocks[b],
                    G_future,
                    W_future,
                    H_blocks[b],
                    lasts[b - 1] if b > 0 else None,
                    firsts[b + 1] if b < n_blocks - 1 else None,
                    settings,
                    not last_task,
                    pure=False,
                )
                for b in range(n_blocks)
            ]
            summaries = client.gather([client.submit(_summary, s) for s in states])
            terms = [summary[0] for summary in summaries]
            stamps.append(time.perf_counter())
            row = np.sum(np.array(terms), axis=0)  # block order: a fixed reduction
            row = np.append(row, row.sum())
            sent += W_t.nbytes
            received += sum(part.nbytes for summary in summaries for part in summary)
            if iteration == 0:
                initial = row
            else:
                losses.append(row)
                if estimator.verbose:
                    logger.info("iteration %d: objective %.10g", iteration, row[-1])
                if previous - row[-1] <= estimator.tol * abs(previous):
                    converged = True
                    break
            if last_task:
                break
            previous = row[-1]
            numerator = np.sum([summary[1] for summary in summaries], axis=0)
            row_sums = np.sum([summary[2] for summary in summaries], axis=0)
            W_t = multiplicative_w_update(
                numerator,
                np.outer(column_sums, row_sums),
                simplex_rows=settings["simplex_rows"],
                fixed=None,
                eps=settings["eps"],
            ).astype(dtype)
            H_blocks = states  # each block's next task reads its H from its state
            firsts = [client.submit(operator.getitem, s, "first") for s in states]
            lasts = [client.submit(operator.getitem, s, "last") for s in states]
        H_fit = np.concatenate(client.gather([client.submit(_own_H, Hb) for Hb in H_blocks]), axis=1)
    except DistributedFitError:
        raise
    except Exception as error:
        if _is_cluster_failure(error):
            raise DistributedFitError(
                f"the distributed fit lost data it could not recompute ({type(error).__name__}: "
                f"{error}); nothing was fitted: rerun it (on a cluster whose workers stay up)"
            ) from error
        raise
    if not converged:
        warn_not_converged(estimator.max_iter, estimator.tol, stacklevel=2)
    n_iter = len(losses)
    estimator.G_, estimator.W_, estimator.H_ = G_full.astype(dtype), W_t, H_fit
    estimator.components_ = np.ascontiguousarray((estimator.G_ @ W_t).T)
    estimator.n_iter_ = n_iter
    estimator.losses_ = np.array(losses).reshape(n_iter, 4)
    estimator.initial_losses_ = initial
    estimator.loss_names_ = LOSS_NAMES
    estimator.reconstruction_err_ = float(estimator.losses_[-1, 0]) if n_iter else float(initial[0])
    estimator.converged_ = converged
    estimator.n_features_in_ = n_channels
    estimator.data_scale_, estimator.beta_ = 1.0, 1.0
    estimator.kept_channels_ = np.ones(n_channels, bool)
    tasks = n_iter + 1
    estimator.iteration_seconds_ = np.diff(stamps)[1:]  # each after the first (which loads)
    estimator.bytes_per_iteration_ = {
        "to_workers": sent / tasks,
        "to_client": received / tasks,
        "between_workers_halo": float(halo_bytes),
    }
    return estimator


def _summary(state):
    """What comes back to the client: objective terms and W statistics (small)."""
    if "numerator" not in state:
        return (state["terms"],)
    return state["terms"], state["numerator"], state["row_sums"]


def _own_H(H):
    return H["H"] if isinstance(H, dict) else H


def _is_cluster_failure(error):
    names = {type(error).__name__} | {
        type(cause).__name__ for cause in (error.__cause__, error.__context__) if cause is not None
    }
    return bool(
        names
        & {
            "KilledWorker",
            "FutureCancelledError",
            "CancelledError",
            "CommClosedError",
            "FutureLostError",
            "OSError",
            "TimeoutError",
        }
    )
