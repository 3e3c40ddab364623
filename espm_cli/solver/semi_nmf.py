"""Semi-NMF: a nonnegative dictionary with signed codes, X ≈ Z D.

X (n_samples, n_features) — in EDX work pixels x channels of data that are no longer
counts (background-subtracted, PCA-denoised, difference images) — is modelled as Z D
with D (k, n_features) >= 0 (spectra) and Z (n_samples, k) signed (maps), minimising

    F(Z, D) = ½ ‖X − Z D‖²_F + l1 Σ |Z|

With a physics matrix G (n_features, m) the dictionary is D = (G W)ᵀ with W (m, k) >= 0.
G = identity gives D = Wᵀ, so one set of formulas serves both (docs/solver.md).

Solvers (a dict from name to the pair of block steps, :data:`SOLVERS`):

- ``"mu"`` (Ding, Li & Jordan 2010): Z by least squares (exact; with l1 by proximal
  gradient steps of step 1/L, each lowering F), W by the multiplicative update

      W ← W ⊙ sqrt( ([GᵀXᵀZ]⁺ + GᵀG W [ZᵀZ]⁻) / ([GᵀXᵀZ]⁻ + GᵀG W [ZᵀZ]⁺) )

  (A⁺ = (|A| + A)/2, A⁻ = (|A| − A)/2), the minimiser of an auxiliary function of F in
  W: monotone.
- ``"pgd"``: a proximal-gradient step on Z (soft-thresholding for l1) and a projected
  gradient step on W, each of step 1/L with L the exact Lipschitz constant of its block
  (‖D Dᵀ‖₂ and ‖ZᵀZ‖₂ ‖GᵀG‖₂): each step lowers F (the quadratic upper bound).

With ``l1 > 0`` the columns of W are held in the unit ℓ2 ball (the penalty is otherwise
blind to the split of scale between Z and D) and the dictionary step is the projected
gradient step onto that set, for both solvers.
"""

import logging
import warnings
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import randomized_svd
from sklearn.utils.validation import check_is_fitted, validate_data

logger = logging.getLogger(__name__)

LOSS_NAMES = ("frobenius", "l1_sparsity", "total")
_INNER_PROXIMAL_STEPS = 10  # "mu" with l1: proximal steps on Z per iteration
_TRANSFORM_STEPS = 500  # proximal steps of transform with l1 (to tol)


def _dense(X):
    """X as a dense array: every step of semi-NMF is dense (Z D has no zeros to keep)."""
    return X.toarray() if sp.issparse(X) else X


def _positive(A):
    return 0.5 * (np.abs(A) + A)


def _negative(A):
    return 0.5 * (np.abs(A) - A)


_CANCELLATION = 1e-6  # below this fraction of ‖X‖², the residual is summed directly


class _Problem:
    """X, G and the products of them every step needs (computed once)."""

    def __init__(self, X, G):
        self.X = X
        self.G = G  # None: identity
        self.gram_G = None if G is None else G.T @ G  # (m, m)
        self.gram_G_norm = 1.0 if G is None else float(np.linalg.norm(self.gram_G, 2))
        self.x_squared = float(np.vdot(X, X))  # ‖X‖²

    def dictionary(self, W):
        """D (k, n_features)."""
        return W.T if self.G is None else (self.G @ W).T

    def data_times_codes(self, Z):
        """GᵀXᵀZ (m, k)."""
        product = self.X.T @ Z
        return product if self.G is None else self.G.T @ product

    def gram_times(self, W):
        """GᵀG W (m, k)."""
        return W if self.G is None else self.gram_G @ W

    def objective(self, Z, W, l1, stats):
        """:func:`objective_terms` from the statistics of Z, without forming X − Z D.

        ``½‖X − Z D‖² = ½(‖X‖² − 2 Σ (GᵀXᵀZ) ⊙ W + Σ (ZᵀZ) ⊙ (D Dᵀ))`` with
        ``D Dᵀ = Wᵀ GᵀG W``: (m, k) and (k, k) products instead of an (n, f) residual.
        Where the fit is so close that the difference cancels (the residual below
        ``_CANCELLATION`` of ‖X‖²), the residual is summed directly.
        """
        cross, gram_Z = stats
        gram_D = W.T @ self.gram_times(W)
        residual = 0.5 * (self.x_squared - 2.0 * float(np.sum(cross * W)) + float(np.sum(gram_Z * gram_D)))
        if residual <= 0.5 * _CANCELLATION * self.x_squared:
            return objective_terms(self.X, Z, self.dictionary(W), l1)
        sparsity = l1 * float(np.abs(Z).sum())
        return np.array([residual, sparsity, residual + sparsity])


def codes_statistics(problem, Z):
    """(GᵀXᵀZ (m, k), ZᵀZ (k, k)): what the dictionary step and the objective need of Z."""
    return problem.data_times_codes(Z), Z.T @ Z


def objective_terms(X, Z, D, l1):
    """[½‖X − Z D‖², l1 Σ|Z|, total] in float64, summed directly (the slow, exact form).

    Parameters
    ----------
    X : ndarray (n, f)
    Z : ndarray (n, k)
    D : ndarray (k, f)
    l1 : float

    Returns
    -------
    ndarray of shape (3,)
    """
    residual = 0.5 * float(np.sum((X - Z @ D) ** 2))
    sparsity = l1 * float(np.abs(Z).sum())
    return np.array([residual, sparsity, residual + sparsity])


def soft_threshold(values, threshold):
    """The proximal map of ``threshold · |·|``."""
    return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def proximal_code_step(X_Dt, Z, gram_D, l1):
    """One proximal-gradient step on Z with step 1/‖D Dᵀ‖₂ (never increases F).

    ``X_Dt`` = X Dᵀ (n, k) and ``gram_D`` = D Dᵀ (k, k): the gradient of the residual
    term is ``Z D Dᵀ − X Dᵀ``, so steps with D fixed share X Dᵀ.
    """
    lipschitz = float(np.linalg.norm(gram_D, 2))
    if lipschitz == 0.0:
        return Z
    gradient = Z @ gram_D - X_Dt
    return soft_threshold(Z - gradient / lipschitz, l1 / lipschitz)


def least_squares_codes(X, D):
    """argmin_Z ‖X − Z D‖² (the minimum-norm one when D D ᵀ is singular)."""
    # X D⁺ (a k x n_features pseudo-inverse, then one product): lstsq on the
    # (n_features x k) system with n_samples right-hand sides was 16x slower
    return X @ np.linalg.pinv(D)


def mu_code_step(problem, Z, W, l1):
    D = problem.dictionary(W)
    if l1 == 0.0:
        return least_squares_codes(problem.X, D)
    X_Dt, gram_D = problem.X @ D.T, D @ D.T
    for _ in range(_INNER_PROXIMAL_STEPS):
        Z = proximal_code_step(X_Dt, Z, gram_D, l1)
    return Z


def mu_dictionary_step(problem, Z, W, stats=None):
    """Ding, Li & Jordan's multiplicative update of the nonnegative factor (module doc).

    ``stats``: :func:`codes_statistics` of Z, when the caller has them.
    """
    cross, gram_Z = codes_statistics(problem, Z) if stats is None else stats  # (m, k), (k, k)
    weighted = problem.gram_times(W)
    numerator = _positive(cross) + weighted @ _negative(gram_Z)
    denominator = _negative(cross) + weighted @ _positive(gram_Z)
    ratio = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
    return W * np.sqrt(ratio)


def pgd_code_step(problem, Z, W, l1):
    D = problem.dictionary(W)
    return proximal_code_step(problem.X @ D.T, Z, D @ D.T, l1)


def pgd_dictionary_step(problem, Z, W, unit_ball=False, stats=None):
    """Projected gradient on W >= 0, step 1/(‖ZᵀZ‖₂ ‖GᵀG‖₂).

    With ``unit_ball`` every column is also kept in the unit ℓ2 ball (the projection onto
    {w >= 0, ‖w‖ <= 1} is the clip at 0 followed by the scaling back to norm 1 when above).
    ``stats``: :func:`codes_statistics` of Z, when the caller has them.
    """
    cross, gram_Z = codes_statistics(problem, Z) if stats is None else stats
    lipschitz = float(np.linalg.norm(gram_Z, 2)) * problem.gram_G_norm
    if lipschitz == 0.0:
        return W
    gradient = problem.gram_times(W) @ gram_Z - cross
    W = np.maximum(W - gradient / lipschitz, 0.0)
    return _into_unit_ball(W) if unit_ball else W


def _into_unit_ball(W):
    norms = np.linalg.norm(W, axis=0)
    return W / np.maximum(norms, 1.0)[None, :]


#: solver name -> (code step, dictionary step)
SOLVERS = {"mu": (mu_code_step, mu_dictionary_step), "pgd": (pgd_code_step, pgd_dictionary_step)}
INIT_METHODS = ("random", "svd", "custom")


def _check_params(estimator):
    rules = {
        "n_components": (
            lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1,
            "an integer >= 1",
        ),
        "solver": (lambda v: isinstance(v, str) and v in SOLVERS, '"mu" or "pgd"'),
        "l1": (
            lambda v: (
                isinstance(v, (int, float, np.floating))
                and not isinstance(v, bool)
                and np.isfinite(v)
                and v >= 0
            ),
            "a finite real number >= 0",
        ),
        "max_iter": (
            lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1,
            "an integer >= 1",
        ),
        "tol": (
            lambda v: (
                isinstance(v, (int, float, np.floating))
                and not isinstance(v, bool)
                and np.isfinite(v)
                and v >= 0
            ),
            "a finite real number >= 0",
        ),
        "init": (
            lambda v: isinstance(v, str) and v in INIT_METHODS,
            ", ".join(f'"{name}"' for name in INIT_METHODS),
        ),
    }
    for name, (is_allowed, allowed) in rules.items():
        value = getattr(estimator, name)
        if not is_allowed(value):
            raise ValueError(f"{name}={value!r} is not valid: it must be {allowed}.")


class SemiNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Semi-NMF: X ≈ Z D with a nonnegative dictionary D and signed codes Z.

    Minimises ``½ ‖X − Z D‖²_F + l1 Σ|Z|`` over Z (n_samples, k) and D (k, n_features)
    >= 0, or over W (m, k) >= 0 with D = (G W)ᵀ when a physics matrix G is given (signed
    maps of physical spectra). For data that are signed or not counts (after background
    subtraction, PCA denoising, difference images), where a KL fit is not defined.

    Parameters
    ----------
    n_components : int, default=2
        Number of dictionary atoms k.
    G : ndarray of shape (n_features, m) or object with ``.G``, default=None
        Fixed nonnegative matrix; the dictionary is (G W)ᵀ. None: D itself is learnt.
    solver : {"mu", "pgd"}, default="mu"
        "mu": least squares for Z and Ding, Li & Jordan's multiplicative update for the
        dictionary (monotone); "pgd": proximal / projected gradient steps of step 1/L.
    l1 : float, default=0.0
        Weight of the L1 penalty on the codes Z (sparse codes). With l1 > 0 the columns
        of W (the atoms of D without G) are kept in the unit ℓ2 ball: otherwise Z/s, sD
        fits as well with an s times smaller penalty, and the penalty would only shrink
        the scale of Z. The dictionary step is then the projected gradient step for
        both solvers (Ding's update has no such constraint).
    max_iter : int, default=200
    tol : float, default=1e-4
        Stop when ``F_{t-1} − F_t <= tol · |F_{t-1}|``.
    init : {"random", "svd", "custom"}, default="svd"
        Start of the dictionary: the absolute values of the leading right singular
        vectors of X (least squares onto G's columns, clipped, with a G), uniform random
        entries, or ``W`` passed to :meth:`fit` (D without G, W with one).
    random_state : int, numpy Generator or None, default=None
    verbose : int, default=0
        Log the objective every iteration (logging, INFO) when > 0.

    Attributes
    ----------
    components_ : ndarray of shape (k, n_features)
        The dictionary D (>= 0).
    W_ : ndarray of shape (m, k)
        With a G: the weights (D = (G W)ᵀ); without one, ``components_.T``.
    G_ : ndarray of shape (n_features, m)
        G (the identity without one).
    H_ : ndarray of shape (k, n_samples)
        The codes of the fitted data, transposed (SmoothNMF's name: maps of the pixels).
    beta_ : float
        2.0 (the Frobenius loss; SmoothNMF's attribute).
    n_iter_ : int
    losses_ : ndarray of shape (``n_iter_``, 3)
        Objective after each iteration, columns named by ``loss_names_``.
    loss_names_ : tuple of str
        ``("frobenius", "l1_sparsity", "total")``.
    initial_losses_ : ndarray of shape (3,)
    reconstruction_err_ : float
        ``‖X − Z D‖_F`` at the end of the fit.
    converged_ : bool
    n_features_in_ : int
    """

    def __init__(
        self,
        n_components=2,
        *,
        G=None,
        solver="mu",
        l1=0.0,
        max_iter=200,
        tol=1e-4,
        init="svd",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.G = G
        self.solver = solver
        self.l1 = l1
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        tags.input_tags.sparse = True  # made dense (see _dense)
        return tags

    def fit(self, X, y=None, W=None):
        """Learn the dictionary (and the codes) of X.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Real values of any sign (a sparse matrix is made dense).
        y : Ignored
        W : ndarray, optional
            Start for ``init="custom"``: D (k, n_features) >= 0 without G, W (m, k) >= 0
            with one.

        Returns
        -------
        self
        """
        self.fit_transform(X, W=W)
        return self

    def fit_transform(self, X, y=None, W=None):
        """Learn the dictionary and return the codes Z (n_samples, k).

        Parameters
        ----------
        X, y, W
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, k)
        """
        _check_params(self)
        X = _dense(validate_data(self, X, reset=True, dtype=np.float64, accept_sparse=("csr", "csc", "coo")))
        G = self._physics_matrix(X.shape[1])
        problem = _Problem(X, G)
        W0 = self._start(X, G, W)
        Z, W, losses, initial, converged = run_semi_nmf(
            problem,
            W0,
            solver=self.solver,
            l1=float(self.l1),
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
        )
        self.W_ = W
        self.G_ = np.eye(X.shape[1]) if G is None else G
        self.H_ = np.ascontiguousarray(Z.T)
        self.beta_ = 2.0
        self.components_ = np.ascontiguousarray(problem.dictionary(W))
        self.losses_, self.initial_losses_ = losses, initial
        self.loss_names_ = LOSS_NAMES
        self.n_iter_ = losses.shape[0]
        self.converged_ = converged
        self.reconstruction_err_ = float(np.sqrt(2.0 * losses[-1, 0]))
        return Z

    def transform(self, X):
        """Codes of X with the dictionary fixed.

        Least squares without ``l1``; with it, proximal-gradient steps from the least-
        squares codes until ``tol`` (at most ``max(max_iter, 500)`` steps).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, k)
        """
        check_is_fitted(self, "components_")
        X = _dense(validate_data(self, X, reset=False, dtype=np.float64, accept_sparse=("csr", "csc", "coo")))
        D = self.components_
        Z = least_squares_codes(X, D)
        if self.l1 > 0:
            X_Dt, gram_D = X @ D.T, D @ D.T
            x_squared = float(np.vdot(X, X))

            def objective(Z):  # ½‖X − Z D‖² + l1 Σ|Z| from X Dᵀ and D Dᵀ
                fit = x_squared - 2.0 * float(np.sum(Z * X_Dt)) + float(np.sum((Z.T @ Z) * gram_D))
                return 0.5 * fit + self.l1 * float(np.abs(Z).sum())

            previous = objective(Z)
            for _ in range(max(self.max_iter, _TRANSFORM_STEPS)):
                Z = proximal_code_step(X_Dt, Z, gram_D, self.l1)
                current = objective(Z)
                if previous - current <= self.tol * abs(previous):
                    break
                previous = current
        return Z

    def inverse_transform(self, X):
        """The data ``Z @ components_`` of codes Z (n_samples, k)."""
        check_is_fitted(self, "components_")
        return np.asarray(X, dtype=np.float64) @ self.components_

    # the names of the `overcomplete` package's SemiNMF
    def encode(self, X):
        """Alias of :meth:`transform`."""
        return self.transform(X)

    def decode(self, Z):
        """Alias of :meth:`inverse_transform`."""
        return self.inverse_transform(Z)

    def get_dictionary(self):
        """The dictionary D (k, n_features): ``components_``."""
        check_is_fitted(self, "components_")
        return self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _physics_matrix(self, n_features):
        if self.G is None:
            return None
        G = self.G.G if hasattr(self.G, "G") else self.G
        G = np.array(G, dtype=np.float64)
        if G.ndim != 2 or G.shape[0] != n_features:
            raise ValueError(f"G has shape {G.shape}; it must be (n_features, m) = ({n_features}, m).")
        if not np.all(np.isfinite(G)) or G.min() < 0:
            raise ValueError("G must be finite and nonnegative.")
        return G

    def _start(self, X, G, W):
        k = self.n_components
        m = X.shape[1] if G is None else G.shape[1]
        if self.init == "custom":
            expected = (k, X.shape[1]) if G is None else (m, k)
            if W is None:
                raise ValueError(
                    'init="custom" needs W passed to fit: D (k, n_features) without G, W (m, k) with one.'
                )
            W = np.array(W, dtype=np.float64)
            if W.shape != expected:
                raise ValueError(f"custom W has shape {W.shape}; it must be {expected}.")
            if not np.all(np.isfinite(W)) or W.min() < 0:
                raise ValueError("custom W must be finite and nonnegative.")
            return W.T.copy() if G is None else W
        rng = np.random.default_rng(self.random_state)
        scale = np.sqrt(np.mean(X**2)) + 1e-300
        if self.init == "random":
            dictionary = rng.uniform(0.1, 1.0, (k, X.shape[1])) * scale
        else:
            _, singular, rows = _leading_singular_vectors(X, k)
            dictionary = np.abs(rows[:k]) * np.sqrt(singular[:k, None] / X.shape[0])
            if dictionary.shape[0] < k:  # more atoms than the rank of X
                extra = rng.uniform(0.1, 1.0, (k - dictionary.shape[0], X.shape[1])) * scale
                dictionary = np.vstack([dictionary, extra])
            dictionary += 1e-2 * (dictionary.mean() + scale)  # no exact zero: MU keeps it
        if G is None:
            return dictionary.T.copy()
        W0 = np.linalg.lstsq(G, dictionary.T, rcond=None)[0]
        return np.maximum(W0, 1e-2 * max(float(np.abs(W0).mean()), 1e-300))


def _leading_singular_vectors(X, k):
    """(U, s, Vᵀ) of the leading min(k, rank) singular triplets of X.

    A full SVD when X is small; otherwise a randomized SVD (Halko, Martinsson & Tropp
    2011; seed 0, so the start is deterministic), which costs O(n f k) against the full
    SVD's O(n f²): 22.7 s against well under a second at 16384 x 2000.
    """
    rank_bound = min(X.shape)
    if rank_bound <= 4 * k + 10:
        return np.linalg.svd(X, full_matrices=False)
    return randomized_svd(X, k, n_iter=7, random_state=0)


def run_semi_nmf(problem, W, *, solver, l1, max_iter, tol, verbose=0):
    """The semi-NMF loop: codes step, dictionary step, objective, stopping test.

    Parameters
    ----------
    problem : _Problem
    W : ndarray of shape (m, k)
        Nonnegative start of the dictionary weights (D = Wᵀ without G).
    solver : {"mu", "pgd"}
    l1, max_iter, tol, verbose
        As in :class:`SemiNMF`.

    Returns
    -------
    Z, W, losses, initial, converged
    """
    code_step, dictionary_step = SOLVERS[solver]
    if l1 > 0:  # the scale of the atoms is fixed (see SemiNMF's l1)
        dictionary_step = partial(pgd_dictionary_step, unit_ball=True)
        W = W / np.maximum(np.linalg.norm(W, axis=0), 1e-300)[None, :]
    Z = least_squares_codes(problem.X, problem.dictionary(W))
    initial = problem.objective(Z, W, l1, codes_statistics(problem, Z))
    previous = initial[-1]
    losses, converged = [], False
    for iteration in range(max_iter):
        Z = code_step(problem, Z, W, l1)
        stats = codes_statistics(problem, Z)  # shared by the W step and the objective
        W = dictionary_step(problem, Z, W, stats=stats)
        row = problem.objective(Z, W, l1, stats)
        losses.append(row)
        if verbose:
            logger.info("iteration %d: objective %.10g", iteration + 1, row[-1])
        if previous - row[-1] <= tol * abs(previous):
            converged = True
            break
        previous = row[-1]
    else:
        warnings.warn(
            f"SemiNMF stopped at max_iter={max_iter} before the objective's "
            f"relative decrease fell below tol={tol}; raise max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    # the codes of the final dictionary (fit_transform then agrees with transform); the
    # code step only lowers F, so the last row, which now describes them, stays monotone
    Z = code_step(problem, Z, W, l1)
    losses[-1] = problem.objective(Z, W, l1, codes_statistics(problem, Z))
    return Z, W, np.array(losses), initial, converged
