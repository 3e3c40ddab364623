"""MiniBatchSmoothNMF: mini-batches of whole rows reach the full fit's objective and spectra."""

import numpy as np
import pytest
import scipy.sparse as sp

from espm_cli.simulate.synthetic import SimulationSettings, simulate
from espm_cli.solver import SmoothNMF, counts, reference
from espm_cli.solver.minibatch import MiniBatchSmoothNMF, kl_w_statistics

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHAPE_2D = (32, 32)
#: Stated tolerances: objective within 1 % of the full fit's, spectra within 2 degrees.
OBJECTIVE_TOLERANCE = 0.01
ANGLE_TOLERANCE_DEG = 2.0


@pytest.fixture(scope="module")
def problem():
    simulation = simulate(
        SimulationSettings(
            size=SHAPE_2D,
            dose=200,
            n_channels=512,
            energy_scale_keV=0.04,
            shapes=("particles", "layer"),
            seed=1,
        )
    )
    X = simulation.counts.reshape(-1, 512)
    G = simulation.truth.G
    options = dict(G=G, lambda_L=1.0, shape_2d=SHAPE_2D, simplex="H", random_state=0)
    full = SmoothNMF(3, max_iter=300, tol=1e-6, **options).fit(X)
    return X, G, options, full


def _objective(X, G, W, H):
    """F(W, H) by the plain reference steps (independent of the mini-batch code)."""
    data = counts.prepare_counts(X, np.float64)
    return float(
        reference.objective_terms(
            data, G, W, H, shape_2d=SHAPE_2D, lambda_L=1.0, mu=None, epsilon_reg=1.0
        ).sum()
    )


def _angles_deg(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((A @ B.T).max(axis=1), -1, 1)))


def test_fit_by_mini_batches_reaches_the_full_fit(problem):
    X, G, options, full = problem
    estimator = MiniBatchSmoothNMF(3, batch_size=256, max_iter=15, **options).fit(X)
    objective = _objective(X, G, estimator.W_, estimator.H_)
    assert estimator.objective_ == pytest.approx(objective, rel=1e-10)  # its own account is exact
    assert objective <= full.losses_[-1, -1] * (1 + OBJECTIVE_TOLERANCE)
    assert _angles_deg(estimator.components_, full.components_).max() < ANGLE_TOLERANCE_DEG
    np.testing.assert_allclose(estimator.H_.sum(axis=0), 1.0, atol=1e-9)  # simplex H held
    assert estimator.n_steps_ == estimator.n_iter_ * 4 or not estimator.converged_


def test_partial_fit_over_blocks_reaches_the_full_fit(problem):
    X, G, options, full = problem
    estimator = MiniBatchSmoothNMF(3, batch_size=256, **options)
    for _epoch in range(10):
        for row in range(0, SHAPE_2D[0], 8):  # blocks of 8 whole rows, as hyperspy streams
            estimator.partial_fit(X[row * SHAPE_2D[1] : (row + 8) * SHAPE_2D[1]])
    assert estimator.n_steps_ == 40
    H = estimator.transform(X).T
    objective = _objective(X, G, estimator.W_, H)
    assert objective <= full.losses_[-1, -1] * (1 + OBJECTIVE_TOLERANCE)
    assert _angles_deg(estimator.components_, full.components_).max() < ANGLE_TOLERANCE_DEG


def test_one_batch_of_everything_is_one_multiplicative_w_step(problem):
    """A single batch (no past statistics) makes the W update the exact KL W step."""
    X, G, options, _ = problem
    estimator = MiniBatchSmoothNMF(3, batch_size=X.shape[0], transform_max_iter=3, **options)
    estimator.partial_fit(X)
    # redo the step by hand from the W the first batch started from
    start = MiniBatchSmoothNMF(3, batch_size=X.shape[0], transform_max_iter=3, **options)
    start._counts(X, reset=True)
    start._initialise(sp.csr_matrix(X), None, SHAPE_2D)
    H = start._fresh_H(sp.csr_matrix(X))
    H_block, _ = start._fit_block(sp.csr_matrix(X), (0, X.shape[0]), SHAPE_2D, H, update=False)
    B = G @ start.W_
    Y = B @ H_block
    numerator = start.W_ * (G.T @ ((X.T / Y) @ H_block.T))
    denominator = np.outer(G.sum(axis=0), H_block.sum(axis=1))
    expected = np.maximum(numerator / denominator, 1e-10)
    np.testing.assert_allclose(estimator.W_, expected, rtol=1e-9)


def test_kl_w_statistics_agree_with_dense_sums():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.7, (30, 12)).astype(float)
    B = rng.uniform(0.1, 1.0, (12, 3))
    H = rng.uniform(0.1, 1.0, (3, 30))
    ratio_times_H, row_sums, divergence = kl_w_statistics(sp.csr_matrix(X), B, H)
    Y = (B @ H).T
    np.testing.assert_allclose(ratio_times_H, (X / Y).T @ H.T, rtol=1e-12)
    np.testing.assert_allclose(row_sums, H.sum(axis=1), rtol=1e-14)
    with np.errstate(divide="ignore", invalid="ignore"):
        xlogx = np.where(X > 0, X * np.log(X / Y), 0.0)
    assert divergence == pytest.approx(float(np.sum(Y - X + xlogx)), rel=1e-12)


def test_only_the_mini_batch_estimator_has_partial_fit():
    # hyperspy's lazy decomposition streams blocks through any partial_fit: SmoothNMF
    # must not have one, so that it keeps the exact fit
    assert not hasattr(SmoothNMF(), "partial_fit")
    assert hasattr(MiniBatchSmoothNMF(), "partial_fit")


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(forget_factor=0.0), "forget_factor=0.0"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(max_no_improvement=0), "max_no_improvement=0"),
        (dict(beta_loss="frobenius"), "KL loss only"),
        (dict(lambda_L=1.0), "needs shape_2d"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(params, message):
    X = np.random.default_rng(0).poisson(2.0, (20, 8))
    beta = params.pop("beta_loss", None)
    estimator = MiniBatchSmoothNMF(2, **params)
    if beta is not None:
        estimator.beta_loss = beta
    with pytest.raises(ValueError, match=message):
        estimator.partial_fit(X)
