"""SmoothNMF behaviour: inputs, errors, reproducibility, KKT, recovery, API."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning
from solver_helpers import gaussian_peak_matrix, tiny_problem

from espm_cli.solver import LOSS_NAMES, SmoothNMF, smooth_nmf


def _quiet_fit(estimator, X, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **fit_params)


@pytest.fixture()
def problem():
    return tiny_problem(seed=1, n_channels=20, shape_2d=(6, 5), n_components=3)


@pytest.fixture(scope="module")
def two_phase_problem():
    """Small enough and well posed enough for MU to converge to 1e-13 in seconds."""
    return tiny_problem(seed=1, n_channels=20, shape_2d=(6, 5), n_components=2)


def test_fitted_attributes(problem):
    X, G, continuum = problem
    estimator = _quiet_fit(
        SmoothNMF(
            3, G=G, G_continuum=continuum, simplex="W", backend="reference", random_state=0, max_iter=30
        ),
        X,
    )
    m = G.shape[1]
    assert estimator.W_.shape == (m, 3) and estimator.H_.shape == (3, X.shape[0])
    assert estimator.components_.shape == (3, X.shape[1])
    np.testing.assert_allclose(estimator.components_, (G @ estimator.W_).T)
    np.testing.assert_array_equal(estimator.G_, G)
    assert estimator.losses_.shape == (estimator.n_iter_, 4)
    assert estimator.loss_names_ == LOSS_NAMES
    assert estimator.reconstruction_err_ == estimator.losses_[-1, 0]
    assert estimator.n_features_in_ == X.shape[1]
    assert not hasattr(estimator, "mean_")
    L = estimator.transform(X)
    assert L.shape == (X.shape[0], 3)
    np.testing.assert_allclose(
        estimator.inverse_transform(estimator.H_.T), (G @ estimator.W_ @ estimator.H_).T
    )


def test_fit_transform_returns_abundances_and_twin_matches(problem):
    X, G, _ = problem
    params = dict(
        G=G, lambda_L=0.5, shape_2d=(6, 5), mu=0.2, random_state=4, max_iter=15, backend="reference"
    )
    estimator = SmoothNMF(3, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        H_t = estimator.fit_transform(X)
        W, H, n_iter = smooth_nmf(X, 3, **params)
    np.testing.assert_array_equal(H_t, estimator.H_.T)
    np.testing.assert_array_equal(W, estimator.W_)
    np.testing.assert_array_equal(H, estimator.H_)
    assert n_iter == estimator.n_iter_


def test_transform_recovers_training_abundances(two_phase_problem):
    X, G, _ = two_phase_problem
    estimator = SmoothNMF(
        2, G=G, init="nndsvda", n_init=1, random_state=0, max_iter=20000, tol=1e-13, backend="reference"
    ).fit(X)
    assert estimator.converged_
    estimator.set_params(max_iter=5000, tol=1e-13)
    np.testing.assert_allclose(
        estimator.transform(X), estimator.H_.T, rtol=2e-3, atol=2e-3 * estimator.H_.max()
    )


def test_convergence_warning_when_max_iter_stops(problem):
    X, G, _ = problem
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        estimator = SmoothNMF(3, G=G, max_iter=3, tol=1e-12, backend="reference").fit(X)
    assert not estimator.converged_ and estimator.n_iter_ == 3


def test_seeded_runs_are_reproducible(problem):
    X, G, _ = problem
    fits = [
        _quiet_fit(SmoothNMF(3, G=G, init=init, random_state=seed, max_iter=10, backend="reference"), X)
        for init in ("random", "nndsvda")
        for seed in (7, 7, 8)
    ]
    for first, again, _other in (fits[:3], fits[3:]):
        np.testing.assert_array_equal(first.W_, again.W_)
        np.testing.assert_array_equal(first.H_, again.H_)
    assert not np.allclose(fits[0].W_, fits[2].W_)


@pytest.mark.parametrize(
    "params", [dict(), dict(simplex="H", lambda_L=2.0, mu=0.3), dict(simplex="W", mu=(0.1, 0.0, 1.0))]
)
def test_sparse_and_integer_input_give_the_dense_result(problem, params):
    X, G, continuum = problem
    X[X < 3] = 0
    common = dict(
        G=G,
        G_continuum=continuum,
        shape_2d=(6, 5),
        random_state=0,
        max_iter=20,
        backend="reference",
        extrapolate=False,
        **params,
    )
    dense = _quiet_fit(SmoothNMF(3, **common), X)
    for variant in (sp.csr_matrix(X), sp.csc_array(X), sp.coo_matrix(X), X.astype(np.uint16)):
        other = _quiet_fit(SmoothNMF(3, **common), variant)
        np.testing.assert_allclose(other.W_, dense.W_, rtol=1e-9)
        np.testing.assert_allclose(other.H_, dense.H_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(other.losses_, dense.losses_, rtol=1e-9, atol=1e-9)


def test_uint8_input_is_not_copied_to_float64_by_validation(problem):
    X, G, _ = problem
    counts = np.clip(X, 0, 255).astype(np.uint8)
    estimator = _quiet_fit(SmoothNMF(3, G=G, max_iter=5, backend="reference", random_state=0), counts)
    assert np.all(np.isfinite(estimator.losses_))


def test_physics_object_is_read_by_duck_typing(problem):
    X, G, continuum = problem

    class PhysicsModel:
        def __init__(self):
            self.G = G
            self.continuum_mask = continuum

    common = dict(simplex="W", random_state=0, max_iter=10, backend="reference")
    from_object = _quiet_fit(SmoothNMF(3, G=PhysicsModel(), **common), X)
    from_array = _quiet_fit(SmoothNMF(3, G=G, G_continuum=continuum, **common), X)
    np.testing.assert_array_equal(from_object.W_, from_array.W_)
    np.testing.assert_allclose(from_object.W_[~continuum].sum(axis=0), 1.0, atol=1e-9)


def _gradient_H(X, G, W, H, lambda_L, mu, epsilon_reg, shape_2d):
    """∂F/∂H written directly from F (dense, numpy)."""
    B = G @ W
    ratio = X.T / (B @ H)
    gradient = B.sum(axis=0)[:, None] - B.T @ ratio + mu[:, None] / (H + epsilon_reg)
    if lambda_L > 0:
        ny, nx = shape_2d
        maps = H.reshape(-1, ny, nx)
        laplacian = np.zeros_like(maps)
        for axis in (1, 2):
            difference = np.diff(maps, axis=axis)
            pad_front = [(0, 0)] * 3
            pad_front[axis] = (1, 0)
            pad_back = [(0, 0)] * 3
            pad_back[axis] = (0, 1)
            laplacian += np.pad(difference, pad_back) * -1 + np.pad(difference, pad_front)
        gradient += lambda_L * laplacian.reshape(H.shape)
    return gradient


def test_laplacian_gradient_matches_finite_differences(problem):
    X, G, _ = problem
    rng = np.random.default_rng(0)
    W, H = rng.uniform(0.5, 1, (G.shape[1], 3)), rng.uniform(0.5, 1, (3, 30))
    mu = np.array([0.3, 0.0, 1.2])
    estimator = SmoothNMF(
        3,
        G=G,
        lambda_L=2.5,
        mu=mu,
        epsilon_reg=0.4,
        shape_2d=(6, 5),
        init="custom",
        max_iter=1,
        backend="reference",
    )
    from espm_cli.solver.counts import prepare_counts
    from espm_cli.solver.reference import objective_terms

    data = prepare_counts(X, np.float64)

    def F(H_):
        return objective_terms(data, G, W, H_, shape_2d=(6, 5), lambda_L=2.5, mu=mu, epsilon_reg=0.4).sum()

    gradient = _gradient_H(X, G, W, H, 2.5, mu, 0.4, (6, 5))
    for index in [(0, 0), (1, 7), (2, 29), (1, 14)]:
        step = np.zeros_like(H)
        step[index] = 1e-6
        numeric = (F(H + step) - F(H - step)) / 2e-6
        assert numeric == pytest.approx(gradient[index], rel=1e-5, abs=1e-6)
    assert estimator is not None


@pytest.mark.parametrize("params", [dict(), dict(lambda_L=1.0, mu=(0.5, 2.0), simplex="H")])
def test_kkt_conditions_at_convergence(two_phase_problem, params):
    """At the fixed point: H ⊙ ∇_H F = 0 and ∇_H F >= 0 (shifted by ν_p on the simplex)."""
    X, G, _ = two_phase_problem
    estimator = SmoothNMF(
        2,
        G=G,
        shape_2d=(6, 5),
        epsilon_reg=0.5,
        max_iter=20000,
        tol=1e-14,
        init="nndsvda",
        n_init=1,
        random_state=0,
        backend="reference",
        **params,
    )
    _quiet_fit(estimator, X)
    W, H = estimator.W_, estimator.H_
    mu = np.broadcast_to(np.asarray(params.get("mu", 0.0), float), (2,))
    gradient = _gradient_H(X, G, W, H, params.get("lambda_L", 0.0), mu, 0.5, (6, 5))
    if params.get("simplex") == "H":
        # Σ_k H_kp = 1, so the pixel's multiplier is ν_p = −Σ_k H_kp ∇_kp.
        gradient = gradient - np.sum(H * gradient, axis=0)
    balance = (H * (G @ W).sum(axis=0)[:, None]).max()  # size of the terms that cancel
    assert np.abs(H * gradient).max() <= 1e-6 * balance
    assert gradient.min() >= -1e-6 * np.abs((G @ W).sum(axis=0)).max()
    B = G @ W
    gradient_W = np.outer(G.sum(axis=0), H.sum(axis=1)) - G.T @ (X.T / (B @ H)) @ H.T
    balance_W = (W * np.outer(G.sum(axis=0), H.sum(axis=1))).max()
    assert np.abs(W * gradient_W).max() <= 1e-6 * balance_W
    assert gradient_W.min() >= -1e-6 * np.outer(G.sum(axis=0), H.sum(axis=1)).max()


@pytest.mark.parametrize("params", [dict(simplex="H", lambda_L=1.0), dict(simplex="W")])
def test_recovers_known_spectra_within_two_degrees(params):
    """Known G (Gaussian peaks + continuum), W, H with pure regions, Poisson noise."""
    rng = np.random.default_rng(42)
    n_channels, shape_2d = 200, (16, 16)
    G, continuum = gaussian_peak_matrix(n_channels, centres=[30, 70, 110, 150, 180], width=3)
    W_true = np.array(
        [
            [0.6, 0.0, 0.0],
            [0.4, 0.3, 0.0],
            [0.0, 0.7, 0.2],
            [0.0, 0.0, 0.3],
            [0.0, 0.0, 0.5],
            [0.4, 0.4, 0.4],
            [0.3, 0.3, 0.3],
        ]
    )
    yy, xx = np.mgrid[: shape_2d[0], : shape_2d[1]] / shape_2d[0]
    logits = (
        np.stack(
            [
                -((xx - 0.2) ** 2 + (yy - 0.25) ** 2),
                -((xx - 0.8) ** 2 + (yy - 0.3) ** 2),
                -((xx - 0.5) ** 2 + (yy - 0.85) ** 2),
            ]
        )
        / 0.01
    )
    H_true = np.exp(logits - logits.max(axis=0))
    H_true = (H_true / H_true.sum(axis=0)).reshape(3, -1)
    spectra_true = G @ W_true
    X = rng.poisson(3000 * (spectra_true / spectra_true.sum(axis=0)) @ H_true).T
    estimator = SmoothNMF(
        3,
        G=G,
        G_continuum=continuum,
        shape_2d=shape_2d,
        max_iter=2000,
        tol=1e-9,
        random_state=0,
        backend="reference",
        **params,
    )
    _quiet_fit(estimator, X)
    fitted = estimator.components_ / np.linalg.norm(estimator.components_, axis=1)[:, None]
    truth = (spectra_true / np.linalg.norm(spectra_true, axis=0)).T
    angles = np.degrees(np.arccos(np.clip(truth @ fitted.T, -1, 1)))
    rows, cols = linear_sum_assignment(angles)
    assert angles[rows, cols].max() < 2.0, angles[rows, cols]


BAD_INPUTS = [
    (dict(), lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, -np.inf, X), "infinity"),
    (
        dict(beta_loss=0.0),
        lambda X: np.where(np.arange(X.size).reshape(X.shape) < 5, 0, X),
        "beta_loss=0 is undefined where X is 0 and X has 5 zero entries",
    ),
    (
        dict(beta_loss=-0.5),
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 2, 0, X),
        "beta_loss=-0.5 is undefined where X is 0 and X has 1 zero entry",
    ),
    (dict(beta_loss="poisson"), lambda X: X, "beta_loss='poisson' is not valid"),
    (dict(beta_loss=np.inf), lambda X: X, "beta_loss=inf is not valid"),
    (dict(mask=np.zeros((30, 3), bool)), lambda X: X, r"mask has shape \(30, 3\); it must be"),
    (
        dict(mask=np.zeros((30, 20))),
        lambda X: X,
        r"mask=<array of shape \(30, 20\), dtype float64> is not valid",
    ),
    (dict(mask=np.arange(600).reshape(30, 20) < 20), lambda X: X, "pixel 0 has every entry masked"),
    (dict(mask=np.arange(600).reshape(30, 20) % 20 == 4), lambda X: X, "channel 4 has every entry masked"),
    (dict(mask=np.ones(20, bool)), lambda X: X, "every channel is masked"),
    (dict(mask=np.ones((30, 1), bool)), lambda X: X, "every pixel is masked"),
    (dict(normalize="yes"), lambda X: X, "normalize='yes' is not valid"),
    (dict(beta_loss=1.5, backend="numba"), lambda X: X, "backend='numba' does not serve beta_loss=1.5;"),
    (
        dict(beta_loss=2.0, backend="numba", mask=np.arange(600).reshape(30, 20) == 7),
        lambda X: X,
        "does not serve beta_loss=2 with masked pixels or entries",
    ),
    (dict(), lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), "infinity"),
    (dict(), lambda X: X - X.max() / 2, "negative values"),
    (dict(), lambda X: np.zeros_like(X), "all zero"),
    (dict(G=np.ones((7, 3))), lambda X: X, "G has 7 rows but X has 20 channels"),
    (dict(G=np.column_stack([np.ones(20), np.zeros(20)])), lambda X: X, "G column 1 is all zero"),
    (dict(G=-np.ones((20, 3))), lambda X: X, "nonnegative"),
    (dict(shape_2d=(4, 4)), lambda X: X, "shape_2d=.* holds 16 pixels but X has 30"),
    (dict(n_components=0), lambda X: X, "n_components=0 is not valid"),
    (dict(n_components=21), lambda X: X, "n_components=21 is too large"),
    (dict(simplex="none"), lambda X: X, "simplex='none' is not valid"),
    (dict(init="nmf"), lambda X: X, "init='nmf' is not valid"),
    (dict(init="custom"), lambda X: X, 'init="custom" needs both W'),
    (dict(lambda_L=-1.0), lambda X: X, "lambda_L=-1.0 is not valid"),
    (dict(lambda_L=1.0), lambda X: X, "lambda_L=1.0 needs shape_2d"),
    (dict(mu=-0.5), lambda X: X, "mu=-0.5 is not valid"),
    (dict(mu=[0.1, 0.2]), lambda X: X, "mu has 2 values"),
    (dict(eps=0.0), lambda X: X, "eps=0.0 is not valid"),
    (dict(eps=0.4, simplex="H"), lambda X: X, "n_components \\* eps must be < 1"),
    (dict(tol=-1e-3), lambda X: X, "tol=-0.001 is not valid"),
    (dict(max_iter=0), lambda X: X, "max_iter=0 is not valid"),
    (dict(epsilon_reg=0.0), lambda X: X, "epsilon_reg=0.0 is not valid"),
    (dict(dtype="float16"), lambda X: X, "dtype='float16' is not valid"),
    (dict(backend="opencl"), lambda X: X, "backend='opencl' is not valid"),
    (
        dict(G=np.ones((20, 3)), G_continuum=np.array([True, True, True]), simplex="W"),
        lambda X: X,
        'simplex="W" needs at least one element',
    ),
    (
        dict(G=np.ones((20, 3)), G_continuum=np.array([1, 0, 0])),
        lambda X: X,
        "G_continuum must be a boolean mask",
    ),
    (dict(fixed_W=np.ones((2, 2))), lambda X: X, "fixed_W has shape"),
    (dict(fixed_H=np.full((3, 30), 0.5), simplex="H"), lambda X: X, "fixed_H breaks the simplex"),
]


@pytest.mark.parametrize("params, make_X, message", BAD_INPUTS)
def test_bad_input_raises_clear_error(problem, params, make_X, message):
    X, _, _ = problem
    params = {"n_components": 3, **params}
    with pytest.raises(ValueError, match=message):
        SmoothNMF(**params).fit(make_X(X))


def test_custom_start_with_wrong_shape(problem):
    X, _, _ = problem
    with pytest.raises(ValueError, match=r"custom W has shape \(3, 3\)"):
        SmoothNMF(3, init="custom").fit(X, W=np.ones((3, 3)), H=np.ones((3, 30)))


def test_transform_checks_channel_count(problem):
    X, G, _ = problem
    estimator = _quiet_fit(SmoothNMF(3, G=G, max_iter=5, backend="reference"), X)
    with pytest.raises(ValueError, match="features"):
        estimator.transform(X[:, :10])


def test_hyperspy_decomposition_uses_the_estimator(problem):
    hyperspy = pytest.importorskip("hyperspy.api")
    X, G, _ = problem
    signal = hyperspy.signals.Signal1D(X.reshape(6, 5, 20).astype(np.float64))
    estimator = SmoothNMF(
        3, G=G, shape_2d=(6, 5), lambda_L=0.5, random_state=0, max_iter=20, backend="reference"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.decomposition(algorithm=estimator, output_dimension=3)
    factors = signal.get_decomposition_factors().data
    loadings = signal.get_decomposition_loadings().data
    np.testing.assert_allclose(factors, estimator.components_)
    np.testing.assert_allclose(loadings.reshape(3, -1), estimator.H_)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_callback_sees_every_iteration_and_can_stop(problem, backend):
    X, G, continuum = problem
    seen = []

    def record(n_iter, losses_row):
        seen.append((n_iter, losses_row.copy()))
        return False

    full = _quiet_fit(
        SmoothNMF(
            3,
            G=G,
            G_continuum=continuum,
            backend=backend,
            random_state=0,
            n_init=1,
            max_iter=7,
            tol=0.0,
            callback=record,
        ),
        X,
    )
    assert [n for n, _ in seen] == list(range(1, 8))
    np.testing.assert_array_equal(np.array([row for _, row in seen]), full.losses_)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is not a failure
        stopped = SmoothNMF(
            3,
            G=G,
            G_continuum=continuum,
            backend=backend,
            random_state=0,
            n_init=1,
            max_iter=50,
            tol=0.0,
            callback=lambda n, row: n >= 3,
        ).fit(X)
    assert stopped.n_iter_ == 3 and not stopped.converged_
    np.testing.assert_allclose(stopped.losses_, full.losses_[:3], rtol=1e-12)


def test_callback_with_several_starts_follows_the_first(problem):
    """With n_init > 1 the callback follows the first start; a stop it requests stops
    every start and keeps the first start's run."""
    X, G, continuum = problem
    seen = []
    fit = _quiet_fit(
        SmoothNMF(
            3,
            G=G,
            G_continuum=continuum,
            random_state=0,
            n_init=3,
            max_iter=25,
            tol=0.0,
            callback=lambda n, row: seen.append((n, row.copy())),
        ),
        X,
    )
    assert [n for n, _ in seen] == list(range(1, 26)) and fit.n_iter_ == 25
    first = _quiet_fit(
        SmoothNMF(3, G=G, G_continuum=continuum, random_state=0, n_init=1, max_iter=25, tol=0.0), X
    )
    np.testing.assert_array_equal(np.array([row for _, row in seen]), first.losses_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = SmoothNMF(
            3,
            G=G,
            G_continuum=continuum,
            random_state=0,
            n_init=3,
            max_iter=2000,
            tol=0.0,
            callback=lambda n, row: n >= 3,
        ).fit(X)
    assert stopped.n_iter_ == 3 and not stopped.converged_ and stopped.best_init_ == 0
    np.testing.assert_allclose(stopped.losses_, first.losses_[:3], rtol=1e-12)


def test_callback_must_be_callable(problem):
    X, G, continuum = problem
    with pytest.raises(ValueError, match="callback"):
        SmoothNMF(3, G=G, callback="print").fit(X)


def test_a_start_passed_without_init_custom_is_not_ignored_silently():
    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, (30, 12)).astype(np.float64)
    W0, H0 = rng.uniform(0.5, 1.0, (12, 2)), rng.uniform(0.5, 1.0, (2, 30))
    with pytest.warns(UserWarning, match="init='custom' only"):
        SmoothNMF(2, max_iter=3, tol=0.0).fit(X, W=W0, H=H0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=3
        SmoothNMF(2, init="custom", n_init=1, max_iter=3, tol=0.0).fit(X, W=W0, H=H0)
