"""The ``"numba"`` backend: the reference steps, computed from X's nonzeros by pixel.

Same functions and signatures as :mod:`espm_cli.solver.reference` (see
:mod:`espm_cli.solver.backends`), same results up to rounding, for the two losses whose
terms factorise: β = 1 (KL, also with masked pixels or entries) and β = 2 (Frobenius,
without masks); masked channels are dropped before a backend sees them. X is kept as
:class:`~espm_cli.solver._sparse_data.PixelNonzeros`; each step is one pass over the
nonzeros (:mod:`espm_cli.solver._numba_kernels`); the model terms factorise:
``Σ G W H`` = (column sums of G W) · (row sums of H) for KL, ``Σ (G W H)²`` =
``Σ (BᵀB) ∘ (H Hᵀ)`` for Frobenius, so nothing of size channels x pixels is ever formed.

Work is shared between the steps of one iteration through explicit workspaces, passed
and returned (:class:`~espm_cli.solver.backends.Backend`), never a cache:

- KL: ``evaluate(W, H)`` computes ``Bᵀ (X / B H)`` per pixel along with the divergence and
  returns it as the workspace of the next ``h_step(W, H)``; ``h_step(..., share=True)``
  accumulates, while it writes each pixel's new h, the numerator ``(X / B H_new) H_newᵀ``
  and returns it as the workspace of ``w_step(W, H_new)``. H step → W step → objective:
  two passes over the nonzeros.
- KL with masked pixels or entries: the nonzeros are the observed ones; the H step's
  denominator is per pixel, the column sums of B over the pixel's observed channels
  (``w_j b − Σ_{i missing} B_i``, computed once per W in :func:`evaluate` and handed on in
  its workspace), and the W step's subtracts ``Σ_{missing} H`` per channel: each costs one
  read per missing entry, so an entry mask costs in proportion to its entries.
- Frobenius: ``h_step`` computes each pixel's ``Bᵀ x_j`` in the pass that updates it and
  accumulates ``X H_newᵀ`` (the W step's numerator); ``w_step(..., share=True)`` hands
  that product on to ``evaluate(W_new, H_new)``, whose cross term
  ``Σ X ∘ Y = Σ (G W_new) ∘ (X H_newᵀ)`` then needs no pass: one pass per iteration.

A workspace names the W and H it was computed at (the arrays themselves); a step handed
one for other arrays raises. Without a workspace a step makes its own pass.

Threads: pixels are cut into blocks of equal work, fixed by the data (not by the thread
count); the nogil kernels run on a small pool of Python threads and every block writes its
own partial sums, which are reduced in block order, so results are identical with any
number of threads. The pool size is ``numba.config.NUMBA_NUM_THREADS`` (environment
variable ``NUMBA_NUM_THREADS``, default: the CPU count); no numba threading layer (OpenMP,
TBB) is involved, so no process-wide setting is needed.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
import scipy.sparse as sp

from espm_cli.solver import _numba_kernels as kernels
from espm_cli.solver._sparse_data import PixelNonzeros, pixel_nonzeros_from_array
from espm_cli.solver.constraints import constrained_update, multiplicative_w_update
from espm_cli.solver.masked_counts import observed_counts
from espm_cli.solver.reference import regularisation_terms, sparsity_weights
from espm_cli.solver.surrogate import PowerSurrogate

_WORK_PER_BLOCK = 1 << 16  # nonzeros (plus per-pixel overhead) per block
_MAX_BLOCKS = 64
_PIXEL_OVERHEAD = 8  # a pixel's fixed work, in nonzero-equivalents
_EMPTY_FIXED = np.zeros((0, 0))
_REGISTER_WIDTH = 4
_CHUNK = 1 << 20  # nonzeros per slice when a whole-array temporary would be large

_pool_lock = threading.Lock()
_pool = None
_pool_size = 0


def _n_threads():
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def _thread_pool(n_threads):
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != n_threads:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its queued work still runs
            _pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="espm-numba")
            _pool_size = n_threads
        return _pool


def run_over_blocks(block_function, n_blocks, n_threads=None):
    """Call ``block_function(first, end)`` over ``range(n_blocks)`` on a thread pool.

    Parameters
    ----------
    block_function : callable
        Processes blocks ``first`` to ``end - 1`` (a nogil kernel call).
    n_blocks : int
    n_threads : int or None
        Default: ``numba.config.NUMBA_NUM_THREADS``.
    """
    n_threads = _n_threads() if n_threads is None else n_threads
    if n_threads == 1 or n_blocks == 1:
        block_function(0, n_blocks)
        return
    # A few tasks per thread: balance on a machine shared with other work.
    n_tasks = min(n_blocks, 4 * n_threads)
    bounds = np.linspace(0, n_blocks, n_tasks + 1).round().astype(int)
    pool = _thread_pool(n_threads)
    futures = [
        pool.submit(block_function, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo
    ]
    for future in futures:
        future.result()


def pixel_blocks(pixel_start, n_blocks=None):
    """Cut the pixels into contiguous blocks of about equal work.

    Parameters
    ----------
    pixel_start : ndarray of int64, shape (p + 1,)
    n_blocks : int or None
        Default: from the amount of work, at most 64; never from the thread count.

    Returns
    -------
    ndarray of int64, shape (n_blocks + 1,)
    """
    n_pixels = pixel_start.shape[0] - 1
    work = pixel_start + _PIXEL_OVERHEAD * np.arange(n_pixels + 1)
    if n_blocks is None:
        n_blocks = int(np.clip(-(-int(work[-1]) // _WORK_PER_BLOCK), 1, _MAX_BLOCKS))
    n_blocks = max(1, min(n_blocks, n_pixels))
    targets = np.linspace(0, work[-1], n_blocks + 1)
    starts = np.searchsorted(work, targets[1:-1], side="left")
    return np.unique(np.concatenate([[0], starts, [n_pixels]])).astype(np.int64)


@dataclass
class NonzeroCounts:
    """X (channels x pixels) as nonzeros by pixel, with what the passes share.

    Attributes
    ----------
    nonzeros : PixelNonzeros
    block_start : ndarray of int64
        Pixel blocks (see :func:`pixel_blocks`).
    total : float
        Σ X.
    xlogx_total : float
        Σ X log X over the nonzeros.
    beta : float
        The divergence: 1 (KL) or 2 (Frobenius).
    square_total : float
        Σ X² (the data part of the Frobenius divergence).
    pixel_weight : ndarray of float64 (p,) or None
        KL with masks: 1 for an observed pixel, 0 for a masked one (None: no mask).
    missing_start, missing_channel : ndarray or None
        KL with masks: the missing entries of observed pixels by pixel, as the nonzeros
        (pixel j's missing channels are ``missing_channel[missing_start[j]:missing_start[j+1]]``).
    """

    nonzeros: PixelNonzeros
    block_start: np.ndarray
    total: float
    xlogx_total: float
    beta: float = 1.0
    square_total: float = 0.0
    pixel_weight: np.ndarray | None = None
    missing_start: np.ndarray | None = None
    missing_channel: np.ndarray | None = None
    # (G, whether G is the identity) for the last G seen: a fact about the fit's constant
    # G (matched by object; checking costs a pass over a c x c matrix), never about W or H.
    _identity_of: tuple = field(default=(None, False), repr=False, compare=False)

    @property
    def shape(self):
        """``(n_channels, n_pixels)``."""
        return (self.nonzeros.n_channels, self.nonzeros.n_pixels)

    @property
    def is_sparse(self):
        """Always True: only the nonzeros are stored."""
        return True

    @property
    def weighted(self):
        """Whether some pixel or entry is masked."""
        return self.pixel_weight is not None

    @property
    def n_blocks(self):
        """Number of pixel blocks."""
        return self.block_start.shape[0] - 1

    @property
    def csr(self):
        """The counts as a scipy sparse matrix of shape (c, p) (CSC layout, for the start).

        Named as :class:`espm_cli.solver.counts.CountData`'s attribute, which the
        estimator's initialisation reads.
        """
        nz = self.nonzeros
        return sp.csc_array((nz.counts, nz.channel_index.astype(np.int32), nz.pixel_start), shape=self.shape)

    def is_identity(self, G):
        """Whether G is the identity (G=None in the estimator); checked once per G object."""
        if self._identity_of[0] is not G:
            square = G.ndim == 2 and G.shape[0] == G.shape[1]
            identity = square and bool(np.all(np.diagonal(G) == 1) and np.count_nonzero(G) == G.shape[0])
            self._identity_of = (G, identity)
        return self._identity_of[1]

    @cached_property
    def pixel_totals(self):
        """Σ_i X_ij, float64, shape (p,): a block of pixels at a time, no copy of the counts."""
        nz = self.nonzeros
        totals = np.zeros(nz.n_pixels)
        starts = nz.pixel_start
        for first, last in zip(self.block_start[:-1], self.block_start[1:]):
            begin, end = int(starts[first]), int(starts[last])
            if end == begin:
                continue
            offsets = starts[first:last] - begin
            inside = offsets < end - begin  # all but the empty pixels at the block's end
            sums = np.zeros(last - first)
            sums[inside] = np.add.reduceat(nz.counts[begin:end].astype(np.float64), offsets[inside])
            sums[starts[first + 1 : last + 1] == starts[first:last]] = 0.0  # pixels with no nonzero
            totals[first:last] = sums
        return totals

    @cached_property
    def channel_totals(self):
        """Σ_j X_ij, float64, shape (c,) (one pass over the nonzeros, then remembered)."""
        nz = self.nonzeros
        totals = np.zeros(nz.n_channels)
        for start in range(0, nz.nnz, _CHUNK):
            chunk = slice(start, start + _CHUNK)
            totals += np.bincount(nz.channel_index[chunk], weights=nz.counts[chunk], minlength=nz.n_channels)
        return totals


@dataclass(frozen=True)
class Workspace:
    """What one step computed for the next, at the point (W, H) it names.

    Attributes
    ----------
    W, H : ndarray
        The arrays it was computed at (the objects themselves, compared by identity:
        they are not changed in place between the steps of a fit).
    values : tuple of ndarray
        KL, from :func:`evaluate` for :func:`h_step`: ``(B, Bᵀ (X / B H), pixel_b)``
        (``pixel_b``: per pixel Σ of B over the observed channels, None without masks); from
        :func:`h_step` for :func:`w_step`: ``((X / B H) Hᵀ,)``.
    """

    W: np.ndarray
    H: np.ndarray
    values: tuple

    def at(self, W, H, step):
        """The values, after checking that this workspace is at (W, H)."""
        if self.W is not W or self.H is not H:
            raise ValueError(
                f"the workspace handed to {step} was computed at other W and H "
                "arrays; pass the one returned for these arrays, or none"
            )
        return self.values


def prepare_counts(X, dtype=np.float64, *, beta=1.0, observed_pixels=None, missing=None):
    """Turn X (n_pixels, n_channels) into :class:`NonzeroCounts`.

    Parameters
    ----------
    X : ndarray, scipy.sparse matrix, dask array or PixelNonzeros, (n_pixels, n_channels)
        Validated counts (finite, nonnegative).
    dtype : numpy dtype
        The estimator's compute dtype; unused (the passes accumulate in float64; the counts
        keep a compact exact type).
    beta : float
        1 (KL) or 2 (Frobenius): the losses this backend serves.
    observed_pixels : ndarray of bool (n_pixels,) or None
    missing : sparse matrix of bool (n_pixels, n_channels) or None
        Masked pixels and entries (KL only, :func:`serves`); X must then be a numpy or
        scipy sparse array.

    Returns
    -------
    NonzeroCounts
    """
    weighted = observed_pixels is not None or missing is not None
    if not serves(beta, weighted):
        raise ValueError(
            f"the numba backend does not serve beta_loss={beta:g} with masked "
            "pixels or entries; use backend='reference'"
        )
    pixel_weight = missing_start = missing_channel = None
    if weighted:
        X, pixel_weight, missing_csr = observed_counts(X, observed_pixels=observed_pixels, missing=missing)
    nonzeros = pixel_nonzeros_from_array(X)
    if weighted:  # the missing entries stored as the nonzeros are (compact channel index)
        index_dtype = nonzeros.channel_index.dtype
        if missing_csr is None:
            missing_start = np.zeros(X.shape[0] + 1, dtype=np.int64)
            missing_channel = np.zeros(0, dtype=index_dtype)
        else:
            missing_start = missing_csr.indptr.astype(np.int64)
            missing_channel = missing_csr.indices.astype(index_dtype)
    total = 0.0
    xlogx_total = 0.0
    square_total = 0.0
    for start in range(0, nonzeros.nnz, _CHUNK):  # no float64 copy of all the counts
        values = nonzeros.counts[start : start + _CHUNK].astype(np.float64)
        total += float(values.sum())
        if beta == 1.0:
            xlogx_total += float(np.dot(values, np.log(values)))
        else:
            square_total += float(np.dot(values, values))
    return NonzeroCounts(
        nonzeros=nonzeros,
        block_start=pixel_blocks(nonzeros.pixel_start),
        total=total,
        xlogx_total=xlogx_total,
        beta=float(beta),
        square_total=square_total,
        pixel_weight=pixel_weight,
        missing_start=missing_start,
        missing_channel=missing_channel,
    )


def serves(beta, weighted):
    """The cases of this backend: β = 1 with or without masks, β = 2 without."""
    return beta == 1.0 or (beta == 2.0 and not weighted)


def _as_float64(array):
    # C order and writable: the kernels' argument types then never vary (one compilation).
    return np.require(array, dtype=np.float64, requirements=("C", "W"))


def _model_spectra(data, G, W):
    """B = G W in float64, C order (no product when G is the identity).

    With fewer than 4 components B gets zero columns up to 4: the kernels then keep a
    nonzero's sums in registers (about 5x faster than loops over k).
    """
    W = _as_float64(W)
    B = W if data.is_identity(G) else _as_float64(G) @ W
    if B.shape[1] < _REGISTER_WIDTH:
        padded = np.zeros((B.shape[0], _REGISTER_WIDTH))
        padded[:, : B.shape[1]] = B
        return padded
    return np.ascontiguousarray(B)


def _transpose_G_times(data, G, matrix):
    """``Gᵀ @ matrix`` (``matrix`` itself when G is the identity)."""
    if data.is_identity(G):
        return matrix
    return _as_float64(G).T @ matrix


def _weighted_ratio(data, B, H64):
    """``Bᵀ (X / B H)`` per pixel (k, p) and ``Σ X log(B H)``: one pass."""
    nz = data.nonzeros
    weighted_ratio = np.empty(H64.shape)
    log_model_partial = np.zeros(data.n_blocks)
    run_over_blocks(
        lambda first, end: kernels.count_ratio_pass(
            nz.pixel_start,
            nz.channel_index,
            nz.counts,
            B,
            H64,
            data.block_start,
            first,
            end,
            weighted_ratio,
            log_model_partial,
        ),
        data.n_blocks,
    )
    return weighted_ratio, float(np.sum(log_model_partial))


def _observed_column_sums(data, B, k):
    """Per pixel, Σ of B over its observed channels (k, p); None without masks."""
    if not data.weighted:
        return None
    b = B[:, :k].sum(axis=0)
    pixel_b = np.empty((k, data.shape[1]))
    run_over_blocks(
        lambda first, end: kernels.observed_column_sums_pass(
            data.missing_start,
            data.missing_channel,
            B,
            b,
            data.pixel_weight,
            data.block_start,
            first,
            end,
            pixel_b,
        ),
        data.n_blocks,
    )
    return pixel_b


def _observed_row_sums(data, H):
    """Σ of H over the observed entries of each channel (c, k): the W step's denominator
    before the product with Gᵀ."""
    if data.weighted:
        row_sums = _as_float64(H) @ data.pixel_weight
    else:
        row_sums = np.sum(H, axis=1, dtype=np.float64)
    rows = np.broadcast_to(row_sums, (data.shape[0], H.shape[0]))
    if not data.weighted or data.missing_channel.size == 0:
        return rows
    H64 = _as_float64(H)
    partial = np.empty((data.n_blocks, data.shape[0], max(H.shape[0], _REGISTER_WIDTH)))
    run_over_blocks(
        lambda first, end: kernels.missing_times_H_pass(
            data.missing_start, data.missing_channel, H64, data.block_start, first, end, partial
        ),
        data.n_blocks,
    )
    return rows - partial.sum(axis=0)[:, : H.shape[0]]


def h_step(
    data,
    G,
    W,
    H,
    *,
    shape_2d=None,
    lambda_L=0.0,
    mu=None,
    epsilon_reg=1.0,
    simplex=False,
    fixed=None,
    eps=1e-10,
    workspace=None,
    share=False,
):
    """One majorize-minimize update of H with W fixed; see :func:`reference.h_step`.

    Parameters and return value as :func:`espm_cli.solver.reference.h_step`, with ``data``
    from :func:`prepare_counts`, and

    workspace : Workspace or None
        What :func:`evaluate` returned at these W and H (saves the step a pass).
    share : bool
        Also return the workspace of the :func:`w_step` at (W, H_new).

    Returns
    -------
    H_new, or (H_new, Workspace) with ``share``
    """
    if data.beta == 2.0:
        return _frobenius_h_step(
            data,
            G,
            W,
            H,
            shape_2d=shape_2d,
            lambda_L=lambda_L,
            mu=mu,
            epsilon_reg=epsilon_reg,
            simplex=simplex,
            fixed=fixed,
            eps=eps,
            share=share,
        )
    nz = data.nonzeros
    k, n_pixels = H.shape
    if workspace is None:
        B = _model_spectra(data, G, W)
        weighted_ratio, _ = _weighted_ratio(data, B, _as_float64(H))
        pixel_b = _observed_column_sums(data, B, k)
    else:
        B, weighted_ratio, pixel_b = workspace.at(W, H, "h_step")
    H64 = _as_float64(H)
    use_laplacian = lambda_L > 0 and shape_2d is not None
    grid_rows, grid_cols = (int(shape_2d[0]), int(shape_2d[1])) if use_laplacian else (1, n_pixels)
    fixed64 = _EMPTY_FIXED if fixed is None else _as_float64(fixed)
    H_new = np.empty((k, n_pixels))
    ratio_times_H_partial = np.empty((data.n_blocks, nz.n_channels, B.shape[1]))
    row_sum_partial = np.empty((data.n_blocks, k))
    b = B[:, :k].sum(axis=0)
    mu64 = sparsity_weights(mu, k)
    run_over_blocks(
        lambda first, end: kernels.h_update_pass(
            nz.pixel_start,
            nz.channel_index,
            nz.counts,
            B,
            b,
            _EMPTY_FIXED if pixel_b is None else pixel_b,
            H64,
            weighted_ratio,
            mu64,
            float(epsilon_reg),
            float(lambda_L) if use_laplacian else 0.0,
            grid_rows,
            grid_cols,
            bool(simplex),
            fixed64,
            float(eps),
            data.block_start,
            first,
            end,
            H_new,
            ratio_times_H_partial,
            row_sum_partial,
        ),
        data.n_blocks,
    )
    H_out = H_new.astype(H.dtype, copy=False)
    if not share:
        return H_out
    return H_out, Workspace(W, H_out, (ratio_times_H_partial.sum(axis=0)[:, :k],))


def _ratio_times_H(data, G, W, H):
    """``(X / G W H) Hᵀ`` (c, k): one pass."""
    nz = data.nonzeros
    B = _model_spectra(data, G, W)
    H64 = _as_float64(H)
    partial = np.empty((data.n_blocks, nz.n_channels, B.shape[1]))
    run_over_blocks(
        lambda first, end: kernels.ratio_times_H_pass(
            nz.pixel_start, nz.channel_index, nz.counts, B, H64, data.block_start, first, end, partial
        ),
        data.n_blocks,
    )
    return partial.sum(axis=0)[:, : H.shape[0]]


def w_step(data, G, W, H, *, simplex_rows=None, fixed=None, eps=1e-10, workspace=None, share=False):
    """One majorize-minimize update of W with H fixed; see :func:`reference.w_step`.

    Parameters and return value as :func:`espm_cli.solver.reference.w_step`, with ``data``
    from :func:`prepare_counts`, and

    workspace : Workspace or None
        What ``h_step(..., share=True)`` returned with these H (saves the step a pass).
    share : bool
        Also return the workspace of :func:`evaluate` at (W_new, H) (None for KL).

    Returns
    -------
    W_new, or (W_new, Workspace or None) with ``share``
    """
    if data.beta == 2.0:
        return _frobenius_w_step(
            data, G, W, H, simplex_rows=simplex_rows, fixed=fixed, eps=eps, workspace=workspace, share=share
        )
    if workspace is None:
        ratio_times_H = _ratio_times_H(data, G, W, H)
    else:
        (ratio_times_H,) = workspace.at(W, H, "w_step")
    W64 = _as_float64(W)
    numerator = W64 * _transpose_G_times(data, G, ratio_times_H)
    if data.weighted:
        denominator = _transpose_G_times(data, G, np.ascontiguousarray(_observed_row_sums(data, H)))
    else:
        column_sums = np.ones(G.shape[1]) if data.is_identity(G) else np.sum(G, axis=0, dtype=np.float64)
        denominator = np.outer(column_sums, np.sum(H, axis=1, dtype=np.float64))
    W_new = multiplicative_w_update(
        numerator, denominator, simplex_rows=simplex_rows, fixed=fixed, eps=eps
    ).astype(W.dtype, copy=False)
    return (W_new, None) if share else W_new


def evaluate(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0, workspace=None):
    """The objective terms at (W, H) and the workspace of the next :func:`h_step` there.

    Parameters
    ----------
    data, G, W, H, shape_2d, lambda_L, mu, epsilon_reg
        As :func:`objective_terms`.
    workspace : Workspace or None
        What ``w_step(..., share=True)`` returned: None for KL; for Frobenius
        ``X Hᵀ``, which gives the cross term without a pass.

    Returns
    -------
    terms : ndarray of shape (3,)
    workspace : Workspace or None
        KL: the statistics of the next H step; Frobenius: None (its H step reads the
        nonzeros it needs in its own pass).
    """
    if data.beta == 2.0:
        return _frobenius_evaluate(
            data,
            G,
            W,
            H,
            shape_2d=shape_2d,
            lambda_L=lambda_L,
            mu=mu,
            epsilon_reg=epsilon_reg,
            workspace=workspace,
        )
    B = _model_spectra(data, G, W)
    H64 = _as_float64(H)
    weighted_ratio, log_model_total = _weighted_ratio(data, B, H64)
    pixel_b = _observed_column_sums(data, B, H.shape[0])
    if pixel_b is None:
        model_total = float(B[:, : H.shape[0]].sum(axis=0) @ H64.sum(axis=1))
    else:  # Σ of the model over the observed entries
        model_total = float(np.sum(pixel_b * H64))
    kl = model_total - data.total + data.xlogx_total - log_model_total
    laplacian, log_sparsity = regularisation_terms(
        H64, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg
    )
    return np.array([kl, laplacian, log_sparsity]), Workspace(W, H, (B, weighted_ratio, pixel_b))


def objective_terms(data, G, W, H, *, shape_2d=None, lambda_L=0.0, mu=None, epsilon_reg=1.0):
    """The three terms of F in float64; see :func:`reference.objective_terms`.

    Parameters and return value as :func:`espm_cli.solver.reference.objective_terms`,
    with ``data`` from :func:`prepare_counts`.
    """
    terms, _ = evaluate(data, G, W, H, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg)
    return terms


def _counts_times_H(data, H64, width):
    """``X Hᵀ`` (c, k): one pass."""
    nz = data.nonzeros
    partial = np.empty((data.n_blocks, nz.n_channels, width))
    run_over_blocks(
        lambda first, end: kernels.counts_times_H_pass(
            nz.pixel_start, nz.channel_index, nz.counts, H64, data.block_start, first, end, partial
        ),
        data.n_blocks,
    )
    return partial.sum(axis=0)[:, : H64.shape[0]]


def _frobenius_h_step(data, G, W, H, *, shape_2d, lambda_L, mu, epsilon_reg, simplex, fixed, eps, share):
    """The β = 2 H step (one pass: ``Bᵀ x_j`` and ``X H_newᵀ``); see :func:`h_step`."""
    nz = data.nonzeros
    k, n_pixels = H.shape
    B = _model_spectra(data, G, W)
    gram = np.ascontiguousarray(B[:, :k].T @ B[:, :k])
    H64 = _as_float64(H)
    use_laplacian = lambda_L > 0 and shape_2d is not None
    grid_rows, grid_cols = (int(shape_2d[0]), int(shape_2d[1])) if use_laplacian else (1, n_pixels)
    fixed64 = _EMPTY_FIXED if fixed is None else _as_float64(fixed)
    H_new = np.empty((k, n_pixels))
    partial = np.empty((data.n_blocks, nz.n_channels, B.shape[1]))
    mu64 = sparsity_weights(mu, k)
    run_over_blocks(
        lambda first, end: kernels.frobenius_h_pass(
            nz.pixel_start,
            nz.channel_index,
            nz.counts,
            B,
            gram,
            H64,
            mu64,
            float(epsilon_reg),
            float(lambda_L) if use_laplacian else 0.0,
            grid_rows,
            grid_cols,
            bool(simplex),
            fixed64,
            float(eps),
            data.block_start,
            first,
            end,
            H_new,
            partial,
        ),
        data.n_blocks,
    )
    H_out = H_new.astype(H.dtype, copy=False)
    if not share:
        return H_out
    return H_out, Workspace(W, H_out, (partial.sum(axis=0)[:, :k], H_new))


def _frobenius_w_step(data, G, W, H, *, simplex_rows, fixed, eps, workspace, share):
    """The β = 2 W step from ``X Hᵀ`` and ``H Hᵀ``; see :func:`w_step`."""
    k = H.shape[0]
    if workspace is None:
        H64 = _as_float64(H)
        counts_times_H = _counts_times_H(data, H64, max(k, _REGISTER_WIDTH))
    else:
        counts_times_H, H64 = workspace.at(W, H, "w_step")
    B = _model_spectra(data, G, W)[:, :k]
    model = B @ (H64 @ H64.T)  # (B H) Hᵀ through the k x k Gram matrix of H
    P = _transpose_G_times(data, G, model)
    Q = _transpose_G_times(data, G, counts_times_H)
    surrogate = PowerSurrogate(P, Q, _as_float64(W), 0.0, 0.0, 0.0, 2.0)
    W_new = constrained_update(surrogate, fixed=fixed, simplex_rows=simplex_rows, eps=eps, dtype=W.dtype)
    if not share:
        return W_new
    return W_new, Workspace(W_new, H, (counts_times_H, H64))


def _frobenius_evaluate(data, G, W, H, *, shape_2d, lambda_L, mu, epsilon_reg, workspace):
    """½ Σ X² − Σ X ∘ Y + ½ Σ (BᵀB) ∘ (H Hᵀ) and the regularisers; see :func:`evaluate`."""
    k = H.shape[0]
    if workspace is None:
        H64 = _as_float64(H)
        counts_times_H = _counts_times_H(data, H64, max(k, _REGISTER_WIDTH))
    else:
        counts_times_H, H64 = workspace.at(W, H, "evaluate")
    B = _model_spectra(data, G, W)[:, :k]
    cross = float(np.sum(B * counts_times_H))  # Σ X ∘ (B H) = Σ B ∘ (X Hᵀ)
    model_square = float(np.sum((B.T @ B) * (H64 @ H64.T)))
    divergence = 0.5 * data.square_total - cross + 0.5 * model_square
    laplacian, log_sparsity = regularisation_terms(
        H64, shape_2d=shape_2d, lambda_L=lambda_L, mu=mu, epsilon_reg=epsilon_reg
    )
    return np.array([divergence, laplacian, log_sparsity]), None


def stream_nonzeros_seconds(data, repeats=5):
    """Best wall time of one pass that only reads the nonzeros: the per-pass lower bound.

    Parameters
    ----------
    data : NonzeroCounts
    repeats : int

    Returns
    -------
    float
        Seconds.
    """
    import time

    nz = data.nonzeros
    partial = np.zeros(data.n_blocks)
    best = np.inf
    for _ in range(repeats + 1):  # the first call may compile
        start = time.perf_counter()
        run_over_blocks(
            lambda first, end: kernels.stream_nonzeros_pass(
                nz.pixel_start, nz.channel_index, nz.counts, data.block_start, first, end, partial
            ),
            data.n_blocks,
        )
        best = min(best, time.perf_counter() - start)
    return best


def _register():
    from espm_cli.solver.backends import Backend, register_backend

    register_backend(
        "numba",
        Backend(
            prepare_counts,
            h_step,
            w_step,
            objective_terms,
            serves=serves,
            evaluate=evaluate,
            shares_steps=True,
        ),
    )


_register()
