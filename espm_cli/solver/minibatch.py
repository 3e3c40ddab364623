"""MiniBatchSmoothNMF: the SmoothNMF objective fitted block by block (an online fit).

Each batch is a block of whole image rows (or of ``batch_size`` pixels without a grid).
For a batch, H is updated with W fixed by the ordinary H steps (up to
``transform_max_iter`` of them, from the block's last H or, with ``fresh_restarts``,
from a fresh start); the Laplacian couples the block's rows to one row above and one
below (the halo), held at their current values. Then the W-step statistics of the batch,
numerator ``W ⊙ Gᵀ((X / G W H) Hᵀ)`` and denominator ``g rᵀ`` (g the column sums of G, r
the row sums of the batch's H), are added to running sums that forget the past,

    A ← ρ A + numerator,    B ← ρ B + denominator,    W ← A / B   (bounds, simplex),

with ρ = ``forget_factor`` per batch (the accumulated statistics of Serizel, Essid &
Richard 2016, "Mini-batch stochastic approaches for accelerated multiplicative updates
in nonnegative matrix factorisation with beta-divergence"; parameter names as
scikit-learn's MiniBatchNMF). This is not the exact fit: W moves after every batch on
statistics partly gathered at older W. The exact fit of the whole data is
:class:`~espm_cli.solver.SmoothNMF` (which has no ``partial_fit``: every one of its
updates needs every pixel).

``partial_fit(X_block)`` does one batch on a block given from outside (hyperspy's lazy
``decomposition`` streams its blocks through it): the block's H is fitted on its own
grid when it holds whole rows of ``shape_2d``, without a halo (the neighbours are not
known). ``fit`` runs epochs over the blocks of the whole image, with halos.
Only the KL loss, without masks, fixed entries or ``normalize``.
"""

import logging

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from espm_cli.solver.backends import backend_for
from espm_cli.solver.blocks import is_lazy, lazy_counts, row_blocks
from espm_cli.solver.constraints import multiplicative_w_update
from espm_cli.solver.estimator import LOSS_NAMES, SmoothNMF, _physics_matrix
from espm_cli.solver.fit_loop import run_updates
from espm_cli.solver.initialization import make_feasible
from espm_cli.solver.losses import beta_value
from espm_cli.solver.missing import find_missing
from espm_cli.solver.reference import regularisation_terms
from espm_cli.solver.validation import check_counts

logger = logging.getLogger(__name__)

__all__ = ["MiniBatchSmoothNMF", "fresh_abundances", "kl_w_statistics"]


def kl_w_statistics(counts, B, H):
    """KL W-step statistics and divergence of a block, from its nonzeros.

    Parameters
    ----------
    counts : scipy.sparse.csr_matrix of shape (p, c)
        The block's counts (pixels x channels).
    B : ndarray of shape (c, k)
        G W.
    H : ndarray of shape (k, p)

    Returns
    -------
    ratio_times_H : ndarray of shape (c, k)
        ``(X / B H) Hᵀ`` (the W numerator before ``W ⊙ Gᵀ``).
    row_sums : ndarray of shape (k,)
        Σ_j H_kj.
    divergence : float
        KL(X ‖ B H) of the block.
    """
    counts = sp.csr_matrix(counts)
    H64 = np.ascontiguousarray(H, dtype=np.float64)
    B64 = np.ascontiguousarray(B, dtype=np.float64)
    ratio_times_H = np.zeros(B64.shape)
    log_model = _kl_w_pass(
        counts.indptr.astype(np.int64),
        counts.indices.astype(np.int64),
        counts.data.astype(np.float64),
        B64,
        H64,
        ratio_times_H,
    )
    row_sums = H64.sum(axis=1)
    values = counts.data.astype(np.float64)
    divergence = (
        float(B64.sum(axis=0) @ row_sums) - float(values.sum()) + float(values @ np.log(values)) - log_model
    )
    return ratio_times_H, row_sums, divergence


def fresh_abundances(counts, G, W, simplex, eps):
    """A start for the abundances of pixels with W fixed: each pixel's counts spread
    evenly over the phases (1/k under the simplex), projected onto the bounds.

    Parameters
    ----------
    counts : scipy.sparse matrix of shape (p, c)
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
    simplex : {"H", "W", None}
    eps : float

    Returns
    -------
    ndarray of shape (k, p), float64
    """
    pixel_totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    model_totals = G.sum(axis=0, dtype=np.float64) @ W.astype(np.float64)
    H = np.tile(pixel_totals / model_totals.sum(), (W.shape[1], 1))
    return make_feasible(
        G, W, H, 0.0, simplex=simplex, simplex_rows=None, fixed_W=None, fixed_H=None, eps=eps, rescale=False
    )[1]


@numba.njit(cache=True, nogil=True)
def _kl_w_pass(indptr, indices, values, B, H, ratio_times_H):
    """One pass over the nonzeros: (X / B H) Hᵀ into ``ratio_times_H``; returns Σ X log(B H)."""
    k = B.shape[1]
    log_model = 0.0
    for pixel in range(indptr.shape[0] - 1):
        for entry in range(indptr[pixel], indptr[pixel + 1]):
            channel = indices[entry]
            model = 0.0
            for component in range(k):
                model += B[channel, component] * H[component, pixel]
            ratio = values[entry] / model
            log_model += values[entry] * np.log(model)
            for component in range(k):
                ratio_times_H[channel, component] += ratio * H[component, pixel]
    return log_model


class MiniBatchSmoothNMF(SmoothNMF):
    """SmoothNMF fitted by mini-batches: H per block of rows, W from running statistics.

    Minimises the objective of :class:`SmoothNMF` (KL loss) approximately, one batch at
    a time (see the module docstring); use it for data too large to iterate over in
    full, or to stream blocks (``partial_fit``, hyperspy's lazy ``decomposition``).
    Parameters not listed are as in :class:`SmoothNMF`.

    Parameters
    ----------
    batch_size : int, default=4096
        Pixels per batch; with ``shape_2d`` rounded down to whole image rows (at least one).
    forget_factor : float, default=0.7
        ρ in (0, 1]: the running W statistics are multiplied by it before each batch's are
        added (1: nothing forgotten, the statistics of every batch weigh the same).
    fresh_restarts : bool, default=False
        Start each batch's H afresh (its pixel totals spread over the phases) instead of
        from the block's last H.
    max_no_improvement : int or None, default=10
        Stop ``fit`` after this many batches without improvement of the smoothed batch
        objective per pixel (None: run ``max_iter`` epochs).
    transform_max_iter : int, default=10
        Most H steps per batch (fewer when the batch objective's relative decrease falls
        below ``tol``).
    max_iter : int, default=50
        Most epochs (passes over all blocks) of ``fit``.

    Attributes
    ----------
    components_, W_, H_, G_, n_features_in_
        As :class:`SmoothNMF` (``H_`` after ``fit`` only).
    n_iter_ : int
        Epochs run by ``fit``.
    n_steps_ : int
        Batches processed (``fit`` and ``partial_fit``).
    losses_ : ndarray of shape (``n_iter_``, 4)
        After each epoch of ``fit``: the objective at that epoch's W and H (each block's
        divergence at the W it was fitted with, the regularisers on the whole H).
    objective_ : float
        The exact objective F(``W_``, ``H_``) of the data ``fit`` saw.
    batch_objectives_ : list of float
        Divergence per pixel of each batch after its H update.
    """

    def __init__(
        self,
        n_components=2,
        *,
        G=None,
        G_continuum=None,
        lambda_L=0.0,
        mu=0.0,
        epsilon_reg=1.0,
        simplex=None,
        shape_2d=None,
        init="auto",
        max_iter=50,
        tol=1e-4,
        random_state=None,
        verbose=0,
        dtype="float64",
        eps=1e-10,
        backend="auto",
        batch_size=4096,
        forget_factor=0.7,
        fresh_restarts=False,
        max_no_improvement=10,
        transform_max_iter=10,
    ):
        super().__init__(
            n_components,
            G=G,
            G_continuum=G_continuum,
            lambda_L=lambda_L,
            mu=mu,
            epsilon_reg=epsilon_reg,
            simplex=simplex,
            shape_2d=shape_2d,
            init=init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
            verbose=verbose,
            dtype=dtype,
            eps=eps,
            backend=backend,
        )
        self.batch_size = batch_size
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.max_no_improvement = max_no_improvement
        self.transform_max_iter = transform_max_iter

    # --- public API -----------------------------------------------------------------

    def fit_transform(self, X, y=None, W=None, H=None):
        """Fit by epochs of mini-batches over blocks of whole rows (with one-row halos).

        Parameters
        ----------
        X : array-like, sparse matrix or dask array of shape (n_pixels, n_channels)
        y : Ignored
        W, H : ndarray, optional
            Starting factors for ``init="custom"``.

        Returns
        -------
        ndarray of shape (n_pixels, k)
            ``H_.T``.
        """
        counts = self._counts(X, reset=True)
        n_pixels = counts.shape[0]
        shape_2d = self._grid(n_pixels)
        blocks = self._pixel_blocks(n_pixels, shape_2d)
        # the start of W from pixels spread over the whole image (a block of rows may
        # miss phases): every n-th pixel, about one batch of them
        stride = max(1, n_pixels // max(int(self.batch_size), 4 * self.n_components))
        self._initialise(counts[::stride], W, None)
        if H is not None and self.init == "custom":
            H_all = np.array(H, dtype=np.float64)
        else:
            H_all = self._fresh_H(counts)
        self._block_cache = (counts, {})
        ewa, best, stale, stop = None, np.inf, 0, False
        losses = []
        previous = np.inf
        self.n_iter_ = 0
        for epoch in range(self.max_iter):
            divergence = 0.0
            for block in blocks:
                H_block, stats = self._fit_block(counts, block, shape_2d, H_all, update=True)
                H_all[:, block[0] : block[1]] = H_block
                divergence += stats
                cost = self.batch_objectives_[-1]
                alpha = min(1.0, (block[1] - block[0]) / n_pixels)
                ewa = cost if ewa is None else (1 - alpha) * ewa + alpha * cost
                if ewa < best:
                    best, stale = ewa, 0
                else:
                    stale += 1
                if self.max_no_improvement is not None and stale >= self.max_no_improvement:
                    stop = True
                    break
            self.n_iter_ = epoch + 1
            row = self._objective_row(divergence, H_all, shape_2d)
            losses.append(row)
            if self.verbose:
                logger.info("epoch %d: objective %.10g", epoch + 1, row[-1])
            if stop or (np.isfinite(previous) and previous - row[-1] <= self.tol * abs(previous)):
                break
            previous = row[-1]
        # H at the final W (same halo rule), and the exact objective there
        divergence = 0.0
        for block in blocks:
            H_block, stats = self._fit_block(counts, block, shape_2d, H_all, update=False)
            H_all[:, block[0] : block[1]] = H_block
            divergence += stats
        final = self._objective_row(divergence, H_all, shape_2d)
        del self._block_cache
        self.losses_ = np.array(losses + [final]) if losses else final[None]
        self.objective_ = float(final[-1])
        self.reconstruction_err_ = float(final[0])
        self.H_ = H_all.astype(self._dtype)
        self.converged_ = not stop
        return self.H_.T

    def partial_fit(self, X, y=None, W=None):
        """One mini-batch on a block of pixels: its H (W fixed), then the W update.

        The first call also chooses the start of W (from ``init``, on this block). With
        ``shape_2d`` and a block of whole rows of it (raster order), the block's H uses
        the Laplacian on the block's own rows; otherwise no Laplacian.

        Parameters
        ----------
        X : array-like, sparse matrix or dask array of shape (n_block_pixels, n_channels)
        y : Ignored
        W : ndarray of shape (m, k), optional
            Starting W for ``init="custom"`` (first call only).

        Returns
        -------
        self
        """
        first = not hasattr(self, "_numerator")
        counts = self._counts(X, reset=first)
        n_pixels = counts.shape[0]
        nx = None if self.shape_2d is None else int(self.shape_2d[1])
        grid = (n_pixels // nx, nx) if nx and n_pixels % nx == 0 else None
        if first:
            self._initialise(counts, W, grid)
        H_block = self._fresh_H(counts)
        self._fit_block(counts, (0, n_pixels), grid, H_block, update=True)
        return self

    def transform(self, X):
        """Abundances of X with W fixed (as :meth:`SmoothNMF.transform`)."""
        check_is_fitted(self, "W_")
        return super().transform(X)

    # --- pieces -----------------------------------------------------------------------

    def _counts(self, X, reset):
        """Checked CSR counts (p, c) on the kept channels; the settings on first use."""
        if beta_value(self.beta_loss) != 1.0:
            raise ValueError(
                f"MiniBatchSmoothNMF fits the KL loss only; use SmoothNMF for beta_loss={self.beta_loss!r}."
            )
        if not 0 < float(self.forget_factor) <= 1:
            raise ValueError(f"forget_factor={self.forget_factor!r} is not valid: it must be in (0, 1].")
        for name in ("batch_size", "transform_max_iter"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} is not valid: it must be an int >= 1.")
        if self.max_no_improvement is not None and (
            not isinstance(self.max_no_improvement, (int, np.integer)) or self.max_no_improvement < 1
        ):
            raise ValueError(
                f"max_no_improvement={self.max_no_improvement!r} is not valid: "
                "it must be None or an int >= 1."
            )
        X = lazy_counts(X) if is_lazy(X) else X
        X = check_counts(sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr())
        n_channels = X.shape[1]
        if reset:
            self.n_features_in_ = n_channels
            G_full, continuum = _physics_matrix(self.G, self.G_continuum, n_channels)
            pattern = find_missing(X, empty_model_rows=~G_full.any(axis=1))
            self._kept = pattern.kept_channels
            G = G_full[self._kept] if self.G is not None else G_full
            self.G_ = G_full
            self._dtype = np.dtype(self.dtype)
            self._G = G.astype(self._dtype)
            self._backend, _ = backend_for(self.backend, 1.0, pattern)
            if self.lambda_L > 0 and self.shape_2d is None:
                raise ValueError(
                    f"lambda_L={self.lambda_L} needs shape_2d (the pixel grid of "
                    "the Laplacian); give shape_2d or set lambda_L=0."
                )
            # the checks and settings of SmoothNMF, without the grid (blocks have their own)
            plain = SmoothNMF(**{**self._smooth_params(), "shape_2d": None, "lambda_L": 0.0})
            self._settings_block = dict(
                plain._settings(n_channels, G, continuum), lambda_L=float(self.lambda_L)
            )
            self.kept_channels_, self.data_scale_, self.beta_ = self._kept, 1.0, 1.0
            self.n_steps_ = 0
            self.batch_objectives_ = []
        elif n_channels != self.n_features_in_:
            raise ValueError(
                f"X has {n_channels} channels; this estimator was started on {self.n_features_in_}."
            )
        X = X[:, self._kept] if not self._kept.all() else X
        X.sort_indices()
        return X

    def _grid(self, n_pixels):
        if self.shape_2d is None:
            if self.lambda_L > 0:
                raise ValueError(
                    f"lambda_L={self.lambda_L} needs shape_2d (the pixel grid of "
                    "the Laplacian); give shape_2d or set lambda_L=0."
                )
            return None
        shape_2d = (int(self.shape_2d[0]), int(self.shape_2d[1]))
        if shape_2d[0] * shape_2d[1] != n_pixels:
            raise ValueError(
                f"shape_2d={self.shape_2d} holds {shape_2d[0] * shape_2d[1]} "
                f"pixels but X has {n_pixels}; ny * nx must equal n_pixels."
            )
        return shape_2d

    def _pixel_blocks(self, n_pixels, shape_2d):
        if shape_2d is None:
            step = int(self.batch_size)
            return [(start, min(n_pixels, start + step)) for start in range(0, n_pixels, step)]
        nx = shape_2d[1]
        return [(lo * nx, hi * nx) for lo, hi in row_blocks(shape_2d, max(1, int(self.batch_size) // nx))]

    def _regularisation(self, grid):
        settings = self._settings_block
        return {
            "shape_2d": grid,
            "lambda_L": settings["lambda_L"] if grid else 0.0,
            "mu": settings["mu"],
            "epsilon_reg": settings["epsilon_reg"],
        }

    def _initialise(self, counts, W, grid):
        """W's start (``init`` on the first block) and empty running statistics."""
        settings = dict(
            self._settings_block, shape_2d=grid, lambda_L=self._settings_block["lambda_L"] if grid else 0.0
        )
        data = self._backend.prepare_counts(counts, self._dtype)
        if self.init == "custom":
            if W is None:
                raise ValueError('init="custom" needs W (m, k) passed to fit or partial_fit.')
            W0 = make_feasible(
                self._G,
                np.asarray(W, dtype=np.float64),
                np.ones((self.n_components, counts.shape[0])),
                data.total,
                simplex=settings["simplex"],
                simplex_rows=settings["simplex_rows"],
                fixed_W=None,
                fixed_H=None,
                eps=settings["eps"],
                rescale=False,
            )[0]
        else:
            start = SmoothNMF(**{**self._smooth_params(), "shape_2d": grid})
            W0, _ = start._starts(self._backend, data, counts.shape[0], self._G, None, None, settings)[0]
        self.W_ = W0.astype(self._dtype)
        self.components_ = np.ascontiguousarray((self.G_ @ self.W_).T)
        self._numerator = np.zeros(self.W_.shape)
        self._denominator = np.zeros(self.W_.shape)

    def _smooth_params(self):
        names = SmoothNMF().get_params().keys()
        return {name: value for name, value in self.get_params(deep=False).items() if name in names}

    def _fresh_H(self, counts):
        settings = self._settings_block
        return fresh_abundances(counts, self._G, self.W_, settings["simplex"], settings["eps"])

    def _fit_block(self, counts, block, shape_2d, H_all, update):
        """H steps on one block (halo rows held), then, with ``update``, the W update.

        Returns the block's new H (k, block pixels) and its divergence after the H steps.
        """
        start, stop = block
        settings = self._settings_block
        if shape_2d is not None and H_all.shape[1] == shape_2d[0] * shape_2d[1]:
            nx = shape_2d[1]
            low = max(0, start - nx)
            high = min(H_all.shape[1], stop + nx)
            grid = ((high - low) // nx, nx)
        else:  # a block on its own (partial_fit): its own rows, no halo
            low, high = start, stop
            grid = shape_2d
        data, own = self._block_data(counts, (low, start, stop, high))
        fixed = None
        if (low, high) != (start, stop):
            fixed = np.full((self.n_components, high - low), -1.0)
            fixed[:, : start - low] = H_all[:, low:start]
            fixed[:, stop - low :] = H_all[:, stop:high]
        H0 = H_all[:, low:high] if not self.fresh_restarts or not update else None
        if H0 is None:
            H0 = np.concatenate(
                [H_all[:, low:start], self._fresh_H(counts[start:stop]), H_all[:, stop:high]], axis=1
            )
        step_settings = dict(
            settings,
            shape_2d=grid,
            lambda_L=settings["lambda_L"] if grid else 0.0,
            fixed_H=fixed,
            fixed_W=None,
        )
        _, H_new, *_ = run_updates(
            self._backend,
            data,
            self._G,
            self.W_,
            np.ascontiguousarray(H0, dtype=self._dtype),
            step_settings,
            max_iter=int(self.transform_max_iter),
            tol=self.tol,
            update_W=False,
            verbose=0,
            warn_at_max_iter=False,
        )
        H_block = np.asarray(H_new[:, start - low : stop - low], dtype=np.float64)
        B = self._G.astype(np.float64) @ self.W_.astype(np.float64)
        ratio_times_H, row_sums, divergence = kl_w_statistics(own, B, H_block)
        if update:
            rho = float(self.forget_factor)
            W64 = self.W_.astype(np.float64)
            numerator = W64 * (self._G.T.astype(np.float64) @ ratio_times_H)
            denominator = np.outer(self._G.sum(axis=0, dtype=np.float64), row_sums)
            self._numerator = rho * self._numerator + numerator
            self._denominator = rho * self._denominator + denominator
            self.W_ = multiplicative_w_update(
                self._numerator, self._denominator, simplex_rows=settings["simplex_rows"], eps=settings["eps"]
            ).astype(self._dtype)
            self.components_ = np.ascontiguousarray((self.G_ @ self.W_).T)
            self.n_steps_ += 1
            self.batch_objectives_.append(divergence / max(1, stop - start))
        return H_block, divergence

    def _block_data(self, counts, bounds):
        """The block's prepared counts (halo rows empty) and its own CSR rows, kept for
        the next epochs of this ``fit`` (one more copy of the nonzeros in all)."""
        cache = getattr(self, "_block_cache", None)
        if cache is not None and cache[0] is counts and bounds in cache[1]:
            return cache[1][bounds]
        low, start, stop, high = bounds
        own = counts[start:stop]
        # the halo pixels take part only through the Laplacian: no counts, H held
        sub = (
            own
            if (low, high) == (start, stop)
            else sp.vstack(
                [
                    sp.csr_matrix((start - low, counts.shape[1])),
                    own,
                    sp.csr_matrix((high - stop, counts.shape[1])),
                ],
                format="csr",
            )
        )
        value = (self._backend.prepare_counts(sub, self._dtype), own)
        if cache is not None and cache[0] is counts:
            cache[1][bounds] = value
        return value

    def _objective_row(self, divergence, H_all, shape_2d):
        settings = self._settings_block
        laplacian, log_sparsity = regularisation_terms(
            H_all,
            shape_2d=shape_2d,
            lambda_L=settings["lambda_L"],
            mu=settings["mu"],
            epsilon_reg=settings["epsilon_reg"],
        )
        return np.array([divergence, laplacian, log_sparsity, divergence + laplacian + log_sparsity])


def shape_2d_of_block(shape_2d, block):
    """The grid (rows, nx) of a block of whole rows (None without a grid)."""
    if shape_2d is None:
        return None
    nx = shape_2d[1]
    return ((block[1] - block[0]) // nx, nx)


MiniBatchSmoothNMF.loss_names_ = LOSS_NAMES
