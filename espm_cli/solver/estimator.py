"""SmoothNMF: regularised Poisson NMF X ≈ G W H as a scikit-learn estimator.

X is given as (n_pixels, n_channels) (hyperspy's and scikit-learn's orientation) and used as
channels x pixels inside. The objective, the majorize-minimize updates and their proof are in
docs/solver.md; the update steps live in a backend (:mod:`espm_cli.solver.backends`).
"""

import logging
import warnings
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from espm_cli.solver.backends import backend_for, get_backend
from espm_cli.solver.blocks import is_lazy, lazy_counts
from espm_cli.solver.fit_loop import best_of_starts, raw_starts, run_updates
from espm_cli.solver.gradient import run_gradient_updates
from espm_cli.solver.initialization import make_feasible
from espm_cli.solver.losses import beta_value, divergence_name
from espm_cli.solver.masked_counts import prepare_masked_counts
from espm_cli.solver.missing import (
    expand_rows,
    fill_masked_array,
    fill_nan,
    find_missing,
    keep_channels,
    mask_for,
    masked_array_mask,
    model_energies,
    restrict_to_model_rows,
)
from espm_cli.solver.scaling import data_scale, scale_factors, scaled_settings
from espm_cli.solver.validation import check_counts, check_parameters, has_negative, warn_if_not_counts

logger = logging.getLogger(__name__)

LOSS_NAMES = ("kl_divergence", "laplacian", "log_sparsity", "total")
_AUTO_N_INIT = 1  # the objective cannot pick between starts reliably (docs/starts.md)


class SmoothNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Poisson (KL) NMF with physics matrix, Laplacian smoothness, sparsity and simplex.

    Minimises, over W (m, k) and H (k, n_pixels), with X (n_channels, n_pixels),

        F = KL(X || G W H) + (lambda_L / 2) tr(H Δ Hᵀ) + Σ_kp mu_k log(H_kp + epsilon_reg)

    subject to W >= eps, H >= eps and the optional simplex constraint, by alternating
    majorize-minimize updates that never increase F.

    Parameters
    ----------
    n_components : int, default=2
        Number of phases k; 1 <= k <= min(n_pixels, n_channels). k may exceed the number of
        columns m of G (the phases are then not identifiable, but the fit is valid).
    G : ndarray of shape (n_channels, m) or object with ``.G`` and ``.continuum_mask``, default=None
        Fixed nonnegative matrix; None means the identity (plain KL-NMF). An object such as
        a physics model is read through its ``G`` and ``continuum_mask`` attributes.
    G_continuum : array-like of bool of shape (m,), default=None
        Which columns of G are continuum (bremsstrahlung); overrides the object's mask.
        Only the other (element) columns take part in ``simplex="W"``.
    lambda_L : float, default=0.0
        Weight of the Laplacian smoothness term; > 0 needs ``shape_2d``.
    mu : float or array-like of shape (k,), default=0.0
        Weight of the log sparsity term, one value or one per component.
    epsilon_reg : float, default=1.0
        ε_r in ``log(H + ε_r)``.
    simplex : {"H", "W"} or None, default=None
        "H": every pixel's abundances sum to 1; "W": every phase's element weights (rows
        of W for the non-continuum columns of G) sum to 1; None: no constraint.
    shape_2d : tuple of int (ny, nx), default=None
        Pixel grid (row-major, pixel ``iy * nx + ix``); needed by the Laplacian.
    init : {"auto", "spa", "kmeans", "nndsvda", "random", "custom"}, default="auto"
        Starting point. "spa" and "kmeans" work where the problem is small: each pixel is
        first expressed in the m columns of G (a few KL updates with G fixed), and the k
        phases are found among those contents, as the extreme points of the cloud
        (successive projection, refined by k-means: deterministic) or as k-means++ clusters
        (seeded by ``random_state``). "nndsvda" and "random" start from an SVD or random
        spectra of the counts, projected onto G. "auto" is "spa" with a G and "nndsvda"
        without one. "custom" uses ``W`` (m, k) and ``H`` (k, n_pixels) passed to fit.
        Every start is scaled to the data and projected onto the constraints (bounds,
        fixed entries, simplex), and gives the same fit whatever the unit of the counts.
    n_init : int or "auto", default="auto"
        Number of starts: the first from ``init``, the second the other kind (NNDSVD-a
        after a vertex start, the vertex start after NNDSVD-a), the others k-means++ starts
        in G's columns (random starts for ``init="random"``). Every start runs to ``tol``
        or ``max_iter``, in parallel (the first on the calling thread); the lowest final
        objective is kept. ``callback`` follows the first start; a stop it requests stops
        every start and keeps the first. "auto": 1. The lowest objective is not always
        the right phases: on simulated cases with a known truth, NNDSVD-a's merged fits
        sometimes end lower than the vertex start's correct ones (docs/starts.md).
    max_iter : int, default=200
        Maximum number of iterations (one H step then one W step).
    tol : float, default=1e-4
        Stop when ``F_{t-1} - F_t <= tol * |F_{t-1}|``.
    fixed_W : ndarray of shape (m, k), default=None
        Entries >= 0 are held at that value during the fit; negative entries are free.
    fixed_H : ndarray of shape (k, n_pixels), default=None
        As ``fixed_W`` for H.
    random_state : int, numpy Generator or None, default=None
        Seed of the initialisation.
    verbose : int, default=0
        Log the objective every iteration (logging, INFO level) when > 0.
    dtype : {"float32", "float64"} or None, default=None
        Compute precision of W, H and G W; objective sums are accumulated in float64.
        None: float64, except float32 on a GPU backend ("cuda", "cupy", "torch").
    eps : float, default=1e-10
        Lower bound of every entry of W and H; with a simplex, k * eps < 1.
    extrapolate : bool, default=True
        After each iteration, try the point extrapolated along the last step and keep it
        only if it lowers the objective (a monotone acceleration: fewer iterations to
        ``tol`` and a lower final objective, for one more objective evaluation per
        iteration; see ``benchmarks/results/bench_start.json``). False gives the plain
        majorize-minimize iterations.
    backend : str, default="auto"
        Update-step backend ("reference" or a registered faster one; "auto" picks the
        fastest available CPU backend that serves the case: "numba" for KL, with or
        without masks, and for Frobenius without). "cuda" runs the fit on an NVIDIA GPU through CuPy
        or PyTorch (``pip install 'espm-cli[gpu]'``; "cupy" or "torch" to pick one),
        "array-api" the same code on numpy (docs/gpu.md); they serve every β without
        masked pixels or entries.
    device : str or None, default=None
        Device of a GPU backend ("cuda", "cuda:1"; torch also "cpu"); None: the first
        CUDA device. Only with backend="cuda", "cupy", "torch" or "array-api" ("cpu").
    beta_loss : {"kullback-leibler", "frobenius", "itakura-saito"} or float, default="kullback-leibler"
        The data term: the β-divergence d_β(X | G W H), β = 1 (KL, Poisson counts), 2
        (½‖X − GWH‖², Gaussian noise), 0 (Itakura-Saito, multiplicative noise) or any
        real β. β ≤ 0 needs X > 0 on every observed entry. β = 1 uses the fast backend;
        other β run on the reference path (over blocks of pixels, β = 2 factorised).
    mask : array-like of bool or None, default=None
        True where X is missing (left out of the loss). Shape (n_pixels, n_channels) for
        single entries, (n_channels,) or (1, n_channels) for whole channels, (n_pixels, 1)
        for whole pixels. NaN entries of X and a numpy masked array's mask are missing
        too. Channels where G is all zero are left out automatically.
    normalize : bool, default=False
        Fit X scaled by ``n_components / (mean counts per observed pixel)``, so that
        lambda_L, mu and epsilon_reg mean the same at any dose (the scaling of the ESpM
        paper's parameters); W (or H under ``simplex="W"``) is given back in counts.
        ``losses_`` are those of the scaled problem; ``data_scale_`` is the factor. Off by
        default: the estimator then fits the X it is given (the Poisson likelihood of the
        raw counts, results as before this option existed); front ends that expose
        dose-independent weights turn it on.
    solver : {"mu", "pgd", "adagrad"}, default="mu"
        How F is minimised. "mu": the multiplicative majorize-minimize steps (monotone).
        "pgd": alternating projected gradient on H then W, Armijo backtracking from a
        Lipschitz estimate (every accepted step lowers F; docs/solver.md). "adagrad":
        per-entry steps ``learning_rate · scale / sqrt(Σ g²)``, projected (not monotone;
        stops on ``|ΔF| <= tol |F|``, at ``max_iter``, or when F stops being finite).
        The gradient solvers run on the general data path (any ``beta_loss``, masks,
        G, Laplacian, log and L1 sparsity, fixed entries, either simplex); ``extrapolate``
        applies to "mu" only; ``transform`` uses the "mu" H steps for every solver (the
        same objective in H).
    l1 : float or array-like of shape (k,), default=0.0
        Weight of the L1 sparsity term ``Σ_kp l1_k H_kp`` (H >= 0), one value or one per
        component. An exact linear term of the MM surrogate for "mu", part of the
        proximal step for "pgd". With l1 > 0 ``losses_`` has an ``"l1_sparsity"`` column.
    learning_rate : float, default=0.1
        Adagrad's rate, as a fraction of each factor's mean entry at the start (so the
        same value works at any unit of the counts). Used by ``solver="adagrad"`` only.
    callback : callable or None, default=None
        Called after every iteration as ``callback(n_iter, losses_row)`` with the
        iteration number and that iteration's row of ``losses_``; a true return value
        stops the fit there (``converged_`` is then False and no ConvergenceWarning is
        emitted). For progress bars and clean interruption.

    Attributes
    ----------
    components_ : ndarray of shape (k, n_channels)
        Phase spectra, ``(G W)ᵀ``.
    W_ : ndarray of shape (m, k)
    H_ : ndarray of shape (k, n_pixels)
        Abundance maps of the fitted data.
    G_ : ndarray of shape (n_channels, m)
    n_iter_ : int
    losses_ : ndarray of shape (``n_iter_``, 4) (5 with ``l1`` > 0)
        Objective after each iteration, columns named by ``loss_names_``.
    loss_names_ : tuple of str
        ``(divergence, "laplacian", "log_sparsity", "total")``, the divergence named by
        :func:`~espm_cli.solver.losses.divergence_name` (``"kl_divergence"`` for β = 1);
        ``"l1_sparsity"`` before ``"total"`` when ``l1`` > 0.
    initial_losses_ : ndarray of shape (4,)
        The same terms at the starting point (of the start that was kept).
    init_objectives_ : ndarray of shape (n_init,)
        Final objective of each start.
    best_init_ : int
        Index of the start that was continued.
    reconstruction_err_ : float
        Final divergence at the scale of the counts (``losses_[-1, 0] / data_scale_**β``).
    beta_ : float
        β of the divergence that was fitted (from ``beta_loss``).
    data_scale_ : float
        The factor X was multiplied by inside the fit (1.0 without ``normalize``).
    kept_channels_ : ndarray of bool of shape (n_channels,)
        Channels that took part in the fit (not masked, G not zero).
    missing_summary_ : dict
        Counts of masked channels, pixels, entries and NaN entries.
    converged_ : bool
        Whether ``tol`` stopped the fit before ``max_iter``.
    n_features_in_ : int
        Number of channels.
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
        n_init="auto",
        max_iter=200,
        tol=1e-4,
        fixed_W=None,
        fixed_H=None,
        random_state=None,
        verbose=0,
        dtype=None,
        eps=1e-10,
        extrapolate=True,
        backend="auto",
        beta_loss="kullback-leibler",
        mask=None,
        normalize=False,
        callback=None,
        device=None,
        solver="mu",
        l1=0.0,
        learning_rate=0.1,
    ):
        self.n_components = n_components
        self.G = G
        self.G_continuum = G_continuum
        self.lambda_L = lambda_L
        self.mu = mu
        self.epsilon_reg = epsilon_reg
        self.simplex = simplex
        self.shape_2d = shape_2d
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.fixed_W = fixed_W
        self.fixed_H = fixed_H
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.eps = eps
        self.extrapolate = extrapolate
        self.backend = backend
        self.beta_loss = beta_loss
        self.mask = mask
        self.normalize = normalize
        self.callback = callback
        self.device = device
        self.solver = solver
        self.l1 = l1
        self.learning_rate = learning_rate

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True  # NaN marks a missing entry
        tags.transformer_tags.preserves_dtype = []
        return tags

    def fit(self, X, y=None, W=None, H=None):
        """Learn W and H from X.

        Parameters
        ----------
        X : array-like, sparse matrix or dask array of shape (n_pixels, n_channels)
            Counts (any numeric dtype), finite and nonnegative. A dask array (a lazy
            hyperspy signal's data) is read one row of chunks at a time and only its
            nonzeros are kept: the same fit as of the computed array, never dense.
        y : Ignored
        W : ndarray of shape (m, k), optional
            Starting W for ``init="custom"``.
        H : ndarray of shape (k, n_pixels), optional
            Starting H for ``init="custom"``.

        Returns
        -------
        self
        """
        self.fit_transform(X, W=W, H=H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn W and H from X and return the abundances.

        Parameters
        ----------
        X, y, W, H
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_pixels, k)
            ``H_.T``.
        """
        check_parameters(self.get_params(deep=False))
        if self.init != "custom" and (W is not None or H is not None):
            warnings.warn(
                f"W and H passed to fit are a start for init='custom' only; init={self.init!r} "
                "makes its own start and does not use them (pass init='custom', n_init=1 to "
                "start from them).",
                UserWarning,
                stacklevel=2,
            )
        beta = beta_value(self.beta_loss)
        if is_lazy(X):  # a dask array: its nonzeros, read block by block (never dense)
            X = lazy_counts(X)
        masked = masked_array_mask(X)
        X = validate_data(
            self,
            fill_masked_array(X),
            reset=True,
            accept_sparse=("csr", "csc", "coo"),
            dtype="numeric",
            ensure_all_finite=False,
        )
        n_pixels, n_channels = X.shape
        k = self.n_components
        if k > min(n_pixels, n_channels):
            raise ValueError(
                f"n_components={k} is too large: it must be at most min(n_pixels, n_channels)"
                f" = {min(n_pixels, n_channels)} for X with n_samples={n_pixels} pixels and "
                f"{n_channels} channels."
            )
        G_full, continuum = _physics_matrix(self.G, self.G_continuum, n_channels)
        pattern = find_missing(
            X,
            mask=self.mask,
            masked_array=masked,
            empty_model_rows=~G_full.any(axis=1),
            energies=model_energies(self.G),
        )
        X = check_counts(fill_nan(X), signed=beta == 2.0)
        X = X.tocsr() if sp.issparse(X) else X
        if beta == 1.0:
            warn_if_not_counts(X)
        X, G, rows = keep_channels(X, G_full, pattern.kept_channels, identity=self.G is None)
        settings = restrict_to_model_rows(self._settings(n_pixels, G_full, continuum), rows)
        if W is not None and rows is not None:
            W = np.asarray(W)[rows]
        scale = data_scale(X, pattern, k) if self.normalize else 1.0
        backend, data, dtype = self._prepare(
            X if scale == 1.0 else X * scale,
            self.dtype,
            beta,
            pattern,
            "l1" in settings or self.solver != "mu" or has_negative(X),
        )
        del X  # the backend's data hold the counts now (a lazy fit keeps no other copy)
        _check_model_covers_counts(G, data.channel_totals)
        settings = scaled_settings(settings, scale)
        W, H = scale_factors(W, H, scale, settings["simplex"])
        starts = self._starts(backend, data, n_pixels, G, W, H, settings)
        G = G.astype(dtype)
        W_fit, H_fit, losses, initial, converged, objectives, best = best_of_starts(
            backend,
            data,
            G,
            [(W0.astype(dtype), H0.astype(dtype)) for W0, H0 in starts],
            settings,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            callback=self.callback,
            extrapolate=self.extrapolate,
            loop=self._fit_loop(),
        )
        self.init_objectives_, self.best_init_ = objectives, best
        W_fit, H_fit = scale_factors(W_fit, H_fit, 1.0 / scale, settings["simplex"])
        if rows is not None:  # G=None: the spectra are 0 on the channels left out
            W_fit = expand_rows(G_full.shape[1], rows, W_fit)
        self.G_, self.W_, self.H_ = G_full.astype(dtype), W_fit, H_fit
        self.components_ = np.ascontiguousarray((self.G_ @ W_fit).T)
        self.n_iter_ = losses.shape[0]
        self.losses_, self.initial_losses_ = losses, initial
        self.loss_names_ = (
            (divergence_name(beta),)
            + LOSS_NAMES[1:3]
            + (("l1_sparsity",) if "l1" in settings else ())
            + LOSS_NAMES[3:]
        )
        self.data_scale_ = scale
        self.reconstruction_err_ = float(losses[-1, 0]) / scale**beta
        self.converged_ = converged
        self.kept_channels_ = pattern.kept_channels
        self.missing_summary_ = pattern.summary()
        self.beta_ = beta
        return H_fit.T

    def transform(self, X):
        """Abundances of new pixels with W (and G) fixed.

        The same H updates run until ``tol`` or ``max_iter``. The Laplacian applies only
        when X has as many pixels as ``shape_2d``; ``fixed_H`` only when its shape matches.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_channels)

        Returns
        -------
        ndarray of shape (n_samples, k)
        """
        check_is_fitted(self, "W_")
        if is_lazy(X):
            X = lazy_counts(X)
        masked = masked_array_mask(X)
        X = validate_data(
            self,
            fill_masked_array(X),
            reset=False,
            accept_sparse=("csr", "csc", "coo"),
            dtype="numeric",
            ensure_all_finite=False,
        )
        n_pixels = X.shape[0]
        pattern = find_missing(
            X, mask=mask_for(self.mask, X.shape), masked_array=masked, left_out_channels=~self.kept_channels_
        )
        X = check_counts(fill_nan(X), signed=self.beta_ == 2.0)
        X, G, rows = keep_channels(
            X.tocsr() if sp.issparse(X) else X, self.G_, pattern.kept_channels, identity=self.G is None
        )
        dtype = self.W_.dtype
        continuum = None
        settings = self._settings(n_pixels, G, continuum, for_transform=True)
        scale = self.data_scale_
        backend, data, _ = self._prepare(
            X if scale == 1.0 else X * scale, dtype, self.beta_, pattern, "l1" in settings or has_negative(X)
        )
        settings = scaled_settings(settings, scale)
        W, _ = scale_factors(self.W_ if rows is None else self.W_[rows], None, scale, settings["simplex"])
        W = W.astype(dtype)
        k = W.shape[1]
        pixel_totals = scale * np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        model_totals = G.sum(axis=0, dtype=np.float64) @ W.astype(np.float64)
        H_start = np.tile(pixel_totals / model_totals.sum(), (k, 1))
        _, H_start = make_feasible(
            G,
            W,
            H_start,
            data.total,
            simplex=settings["simplex"],
            simplex_rows=None,
            fixed_W=None,
            fixed_H=settings["fixed_H"],
            eps=self.eps,
            rescale=False,
        )
        _, H_fit, *_ = run_updates(
            backend,
            data,
            G,
            W,
            H_start.astype(dtype),
            settings,
            max_iter=self.max_iter,
            tol=self.tol,
            update_W=False,
            verbose=self.verbose,
            extrapolate=self.extrapolate,
        )
        _, H_fit = scale_factors(None, H_fit, 1.0 / scale, settings["simplex"])
        return H_fit.T

    def inverse_transform(self, X):
        """Model counts ``L @ components_`` of abundances L.

        Parameters
        ----------
        X : ndarray of shape (n_samples, k)

        Returns
        -------
        ndarray of shape (n_samples, n_channels)
        """
        check_is_fitted(self, "components_")
        return np.asarray(X) @ self.components_

    def _prepare(self, X, dtype, beta, pattern, general):
        """The backend, its prepared data and the compute dtype (``dtype`` None: the
        backend's default); ``general``: the general (MaskedCounts) path, which the
        gradient solvers, the L1 term and signed data (Frobenius) need."""
        if not general:
            backend, options = backend_for(self.backend, beta, pattern, self.device)
            dtype = np.dtype(dtype if dtype is not None else backend.default_dtype)
            return backend, backend.prepare_counts(X, dtype, **options), dtype
        if self.backend not in ("auto", "reference") or self.device is not None:
            raise ValueError(
                f"backend={self.backend!r} serves solver='mu' without l1 on "
                f"nonnegative data only; solver={self.solver!r} with "
                f"l1={self.l1!r} (or signed data) needs backend='auto' or "
                "'reference' (and device=None)."
            )
        dtype = np.dtype(dtype if dtype is not None else "float64")
        data = prepare_masked_counts(
            X, dtype, beta=beta, observed_pixels=pattern.observed_pixels, missing=pattern.missing
        )
        return get_backend("reference"), data, dtype

    def _fit_loop(self):
        """The loop of one start: None (the MM loop) or the gradient solvers' loop."""
        if self.solver == "mu":
            return None
        return partial(run_gradient_updates, solver=self.solver, learning_rate=float(self.learning_rate))

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _settings(self, n_pixels, G, continuum, for_transform=False):
        """Validated regularisation and constraint settings (a plain dict)."""
        k = self.n_components if not for_transform else self.W_.shape[1]
        m = G.shape[1]
        shape_2d = None if self.shape_2d is None else tuple(int(v) for v in self.shape_2d)
        if shape_2d is not None and shape_2d[0] * shape_2d[1] != n_pixels:
            if for_transform:
                shape_2d = None
            else:
                raise ValueError(
                    f"shape_2d={self.shape_2d} holds {shape_2d[0] * shape_2d[1]} "
                    f"pixels but X has {n_pixels}; ny * nx must equal n_pixels. "
                    "In hyperspy a navigation mask removes pixels without "
                    "telling the estimator (exspy's EDS_TEM decomposition "
                    "masks 'vacuum' pixels by default): pass "
                    "navigation_mask=None, or fit only the kept pixels with "
                    "shape_2d=None and lambda_L=0."
                )
        if self.lambda_L > 0 and self.shape_2d is None:
            raise ValueError(
                f"lambda_L={self.lambda_L} needs shape_2d (the pixel grid of the "
                "Laplacian); give shape_2d or set lambda_L=0."
            )
        mu = np.asarray(self.mu, dtype=np.float64)
        if mu.ndim == 1 and mu.shape[0] != k:
            raise ValueError(
                f"mu has {mu.shape[0]} values; it must be a scalar or have one "
                f"value per component (n_components={k})."
            )
        mu = np.broadcast_to(mu, (k,)).copy()
        if self.simplex is not None and k * self.eps >= 1:
            raise ValueError(
                f"eps={self.eps} is too large for simplex={self.simplex!r} with "
                f"n_components={k}: n_components * eps must be < 1."
            )
        simplex_rows = None
        if self.simplex == "W" and not for_transform:
            simplex_rows = np.ones(m, bool) if continuum is None else ~continuum
            if not simplex_rows.any():
                raise ValueError(
                    'simplex="W" needs at least one element (non-continuum) '
                    "column of G; all columns are marked continuum."
                )
            if simplex_rows.sum() * self.eps >= 1:
                raise ValueError(
                    f"eps={self.eps} is too large for simplex='W': the number of "
                    "element rows times eps must be < 1."
                )
        fixed_W = None if for_transform else _fixed_entries(self.fixed_W, "fixed_W", (m, k))
        fixed_H = _fixed_entries(self.fixed_H, "fixed_H", (k, n_pixels), optional=for_transform)
        for name, fixed, rows, simplex in (
            ("fixed_H", fixed_H, None, "H"),
            ("fixed_W", fixed_W, simplex_rows, "W"),
        ):
            if fixed is not None and self.simplex == simplex:
                _check_fixed_mass(name, fixed if rows is None else fixed[rows], self.eps)
        settings = {
            "shape_2d": shape_2d,
            "lambda_L": float(self.lambda_L),
            "mu": mu,
            "epsilon_reg": float(self.epsilon_reg),
            "simplex": self.simplex,
            "simplex_rows": simplex_rows,
            "fixed_W": fixed_W,
            "fixed_H": fixed_H,
            "eps": float(self.eps),
        }
        l1 = np.asarray(self.l1, dtype=np.float64)
        if l1.ndim == 1 and l1.shape[0] != k:
            raise ValueError(
                f"l1 has {l1.shape[0]} values; it must be a scalar or have one "
                f"value per component (n_components={k})."
            )
        if np.any(l1 > 0):  # only then: the objective (and losses_) has an L1 column
            settings["l1"] = np.broadcast_to(l1, (k,)).copy()
        return settings

    def _starts(self, backend, data, n_pixels, G, W, H, settings):
        """The ``n_init`` feasible float64 starts [(W (m, k), H (k, p)), ...]."""
        k = self.n_components
        m = G.shape[1]
        init = self.init
        if init == "auto":
            init = "spa" if self.G is not None else "nndsvda"
        n_init = self.n_init
        if n_init == "auto":
            n_init = _AUTO_N_INIT
        if init == "custom":
            if n_init != 1:
                raise ValueError(
                    f"n_init={self.n_init} needs starts of its own; with "
                    'init="custom" (your W and H) use n_init=1.'
                )
            if W is None or H is None:
                raise ValueError('init="custom" needs both W (m, k) and H (k, n_pixels) passed to fit.')
            W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
            for name, array, shape in (("W", W, (m, k)), ("H", H, (k, n_pixels))):
                if array.shape != shape:
                    raise ValueError(f"custom {name} has shape {array.shape}; it must be {shape}.")
                if not np.all(np.isfinite(array)) or array.min() < 0:
                    raise ValueError(f"custom {name} must be finite and nonnegative.")
            raw = [(W, H)]
        else:
            rng = np.random.default_rng(self.random_state)
            methods = [init] + _further_starts(init, n_init - 1)
            raw = raw_starts(
                methods,
                backend,
                data,
                G,
                self.G is None,
                k,
                rng,
                settings["eps"],
                shape_2d=settings["shape_2d"],
            )
        return [
            make_feasible(
                G,
                W0,
                H0,
                data.total,
                simplex=settings["simplex"],
                simplex_rows=settings["simplex_rows"],
                fixed_W=settings["fixed_W"],
                fixed_H=settings["fixed_H"],
                eps=settings["eps"],
            )
            for W0, H0 in raw
        ]


def _further_starts(init, count):
    """Methods of the starts after the first: the other kind of start, then k-means++.

    After a vertex start ("spa", "kmeans") comes NNDSVD-a, after NNDSVD-a the vertex start,
    then k-means++ starts; random starts are followed by random starts.
    """
    if init == "random":
        return ["random"] * count
    other = "nndsvda" if init in ("spa", "kmeans") else "spa"
    return ([other] + ["kmeans"] * count)[:count]


def _physics_matrix(G, G_continuum, n_channels):
    """G as a float64 array and its continuum mask (or None)."""
    continuum = None
    if G is None:
        matrix = np.eye(n_channels)
    else:
        if hasattr(G, "G"):
            continuum = getattr(G, "continuum_mask", None)
            G = G.G
        matrix = np.array(G, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"G must be a 2-D array (n_channels, m); got shape {matrix.shape}.")
        if matrix.shape[0] != n_channels:
            raise ValueError(
                f"G has {matrix.shape[0]} rows but X has {n_channels} channels; G must be (n_channels, m)."
            )
        if not np.all(np.isfinite(matrix)) or matrix.min() < 0:
            raise ValueError("G must be finite and nonnegative.")
        empty = np.flatnonzero(~matrix.any(axis=0))
        if empty.size:
            raise ValueError(
                f"G column {int(empty[0])} is all zero; drop it (an element "
                "with no line in the energy range)."
            )
    if G_continuum is not None:
        continuum = G_continuum
    if continuum is not None:
        continuum = np.asarray(continuum)
        if continuum.dtype != bool or continuum.shape != (matrix.shape[1],):
            raise ValueError(
                f"G_continuum must be a boolean mask of length m="
                f"{matrix.shape[1]}; got {continuum.dtype} of shape "
                f"{continuum.shape}."
            )
    return matrix, continuum


def _check_model_covers_counts(G, channel_totals):
    """Every channel with counts must be reachable by the model (a nonzero row of G)."""
    uncovered = np.flatnonzero(~G.any(axis=1) & (channel_totals > 0))
    if uncovered.size:
        raise ValueError(
            f"G row {int(uncovered[0])} is all zero but X has counts in that "
            "channel; the model cannot explain them."
        )


def _fixed_entries(fixed, name, shape, optional=False):
    """fixed_W / fixed_H as a float64 array of ``shape`` (None when not given)."""
    if fixed is None:
        return None
    fixed = np.asarray(fixed, dtype=np.float64)
    if fixed.shape != shape:
        if optional:
            return None
        raise ValueError(
            f"{name} has shape {fixed.shape}; it must be {shape} "
            "(negative entries free, others held at that value)."
        )
    if not np.all(np.isfinite(fixed)):
        raise ValueError(f"{name} must be finite (use a negative value for a free entry).")
    return fixed


def _check_fixed_mass(name, fixed, eps):
    """Under a simplex the held entries must leave room for the free ones."""
    free = fixed < 0
    held = np.where(free, 0.0, fixed).sum(axis=0)
    room = 1.0 - held - free.sum(axis=0) * eps
    bad = (free.any(axis=0) & (room <= 0)) | (~free.any(axis=0) & (np.abs(held - 1) > 1e-6))
    if bad.any():
        raise ValueError(
            f"{name} breaks the simplex: in column {int(np.flatnonzero(bad)[0])} "
            "the held entries must sum to less than 1 (exactly 1 if none is free)."
        )


def smooth_nmf(X, n_components=2, *, W=None, H=None, **params):
    """Function form of :class:`SmoothNMF` (same code path).

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_pixels, n_channels)
    n_components : int
    W, H : ndarray, optional
        Starting factors for ``init="custom"``.
    **params
        Any :class:`SmoothNMF` parameter.

    Returns
    -------
    W : ndarray of shape (m, k)
    H : ndarray of shape (k, n_pixels)
    n_iter : int
    """
    estimator = SmoothNMF(n_components, **params)
    estimator.fit(X, W=W, H=H)
    return estimator.W_, estimator.H_, estimator.n_iter_
