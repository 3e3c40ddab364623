"""The surrogate minimiser and the simplex multiplier solve."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF
from espm_cli.solver.simplex import quadratic_log_minimiser, simplex_minimiser


def test_closed_form_minimises_each_term():
    rng = np.random.default_rng(0)
    a, beta, c = rng.uniform(0, 3, 50), rng.uniform(-2, 3, 50), rng.uniform(0, 3, 50)
    a[:10] = 0.0
    beta[:10] = np.abs(beta[:10]) + 0.1
    h = quadratic_log_minimiser(a, beta, c)
    np.testing.assert_allclose(2 * a * h * h + beta * h - c, 0.0, atol=1e-12)
    grid = h[:, None] * np.linspace(0.5, 1.5, 101)[None, :]
    values = a[:, None] * grid**2 + beta[:, None] * grid - c[:, None] * np.log(grid)
    assert np.all(values.argmin(axis=1) == 50)


@pytest.mark.parametrize("with_quadratic", [False, True])
def test_simplex_solution_satisfies_kkt(with_quadratic):
    rng = np.random.default_rng(1)
    shape = (4, 300)
    a = rng.uniform(0, 2, (1, shape[1])) if with_quadratic else 0.0
    beta = rng.uniform(0.1, 5, shape) * rng.choice([1e-3, 1, 1e3], shape[1])
    c = rng.uniform(0, 5, shape) * rng.choice([1e-6, 1, 1e6], shape[1])
    c[0, :20] = 0.0  # some entries sit at the bound
    free = np.ones(shape, bool)
    free[3, :50] = False
    target = np.where(free.all(axis=0), 1.0, 0.7)
    eps = 1e-10
    h = simplex_minimiser(a, beta, c, free, target, eps)
    np.testing.assert_allclose(np.where(free, h, 0).sum(axis=0), target, rtol=1e-12)
    assert np.all(h[free] >= eps)
    # KKT: 2ah + β + ν − c/h = 0 on entries above the bound, >= 0 at the bound.
    a_full = np.broadcast_to(a, shape)
    gradient = 2 * a_full * h + beta - np.divide(c, h, out=np.zeros(shape), where=free)
    above = free & (h > eps)
    nu = np.array([-gradient[above[:, j], j].mean() for j in range(shape[1])])
    spread = np.abs(np.where(above, gradient + nu, 0.0)).max(axis=0)
    size = np.abs(np.where(above, c / np.where(free, h, 1), 0.0)).max(axis=0) + np.abs(beta).max(0)
    assert np.all(spread <= 1e-8 * size)
    assert np.all(np.where(free & ~above, gradient + nu, 0.0) >= -1e-6 * size)


def test_linear_groups_put_their_mass_on_the_smallest_beta():
    beta = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 5.0]])
    h = simplex_minimiser(0.0, beta, np.zeros((3, 2)), np.ones((3, 2), bool), 1.0, 1e-10)
    np.testing.assert_allclose(h, [[1e-10, 1 - 2e-10], [1 - 2e-10, 1e-10], [1e-10, 1e-10]])


@pytest.mark.parametrize("lambda_L", [0.0, 2.0])
def test_all_zero_pixels_under_the_simplex(lambda_L):
    """Empty pixels (common in sparse EDX data) keep F decreasing and the simplex exact."""
    X, G, _ = tiny_problem(seed=4, n_channels=12, shape_2d=(4, 5), n_components=2)
    X[[0, 7, 13]] = 0.0
    estimator = SmoothNMF(
        2,
        G=G,
        simplex="H",
        lambda_L=lambda_L,
        shape_2d=(4, 5),
        random_state=0,
        max_iter=40,
        tol=0.0,
        backend="reference",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(sp.csr_matrix(X))
    totals = np.concatenate([[estimator.initial_losses_[3]], estimator.losses_[:, 3]])
    assert np.all(np.diff(totals) <= 1e-12 * np.abs(totals[:-1]))
    np.testing.assert_allclose(estimator.H_.sum(axis=0), 1.0, atol=1e-9)


def test_the_vectorised_root_raises_no_floating_point_warning():
    """a = 0 with β > 0 (every KL W step without a Laplacian): numba vectorises the loop and
    may evaluate the branch not taken, which must not divide 0 by 0."""
    import warnings

    from espm_cli.solver.simplex import quadratic_log_minimiser

    rng = np.random.default_rng(0)
    beta = rng.uniform(50.0, 150.0, (60, 3))
    c = rng.uniform(0.5, 500.0, (60, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with np.errstate(all="raise"):
            h = quadratic_log_minimiser(np.zeros((60, 3)), beta, c)
            edge = quadratic_log_minimiser(
                np.zeros(4), np.array([0.0, -1.0, 0.0, 2.0]), np.array([0.0, 0.0, 1.0, 0.0])
            )
    np.testing.assert_allclose(h, c / beta, rtol=1e-15)
    np.testing.assert_array_equal(edge, [0.0, 0.0, 0.0, 0.0])
