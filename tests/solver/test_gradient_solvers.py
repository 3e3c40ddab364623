"""The gradient solvers (projected gradient, Adagrad) and the L1 term of SmoothNMF."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF
from espm_cli.solver.backends import get_backend
from espm_cli.solver.fit_loop import run_updates
from espm_cli.solver.gradient import h_gradient, run_gradient_updates, w_gradient
from espm_cli.solver.masked_counts import prepare_masked_counts, statistics


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(2, random_state=0, **params).fit(X)


def _settings(**changes):
    settings = {
        "shape_2d": None,
        "lambda_L": 0.0,
        "mu": np.zeros(2),
        "epsilon_reg": 1.0,
        "simplex": None,
        "simplex_rows": None,
        "fixed_W": None,
        "fixed_H": None,
        "eps": 1e-10,
    }
    settings.update(changes)
    return settings


OPTIONS = {
    "plain": {},
    "G, simplex H": {"G": "G", "simplex": "H"},
    "G, simplex W": {"G": "G", "simplex": "W"},
    "laplacian, log and l1 sparsity": {"lambda_L": 2.0, "shape_2d": (3, 4), "mu": 0.5, "l1": [0.3, 1.0]},
    "mask, fixed entries": {"mask": "entries", "fixed_H": "fixed"},
}


def _options(name, X, G, continuum):
    params = dict(OPTIONS[name])
    if params.get("G") == "G":
        params["G"], params["G_continuum"] = G, continuum
    if params.get("mask") == "entries":
        params["mask"] = np.random.default_rng(5).random(X.shape) < 0.1
    if params.get("fixed_H") == "fixed":
        fixed = -np.ones((2, X.shape[0]))
        fixed[0, :3] = 2.0
        params["fixed_H"] = fixed
    return params


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_pgd_never_increases_the_objective(beta, name):
    X, G, continuum = tiny_problem(1)
    params = _options(name, X, G, continuum)
    fit = _fit(X, solver="pgd", beta_loss=beta, max_iter=25, tol=0.0, **params)
    totals = np.r_[fit.initial_losses_[-1], fit.losses_[:, -1]]
    assert np.all(np.diff(totals) <= 1e-12 * np.abs(totals[:-1]))
    assert totals[-1] < totals[0]
    assert fit.H_.min() >= fit.eps and fit.W_.min() >= fit.eps
    if params.get("simplex") == "H":
        np.testing.assert_allclose(fit.H_.sum(axis=0), 1.0, atol=1e-12)
    if params.get("simplex") == "W":
        np.testing.assert_allclose(fit.W_[~continuum].sum(axis=0), 1.0, atol=1e-12)
    if "fixed_H" in params:
        np.testing.assert_array_equal(fit.H_[0, :3], 2.0)


@pytest.mark.parametrize("beta_loss, constrained", [("kullback-leibler", True), ("frobenius", False)])
def test_pgd_reaches_the_objective_of_mu(beta_loss, constrained):
    X, G, continuum = tiny_problem(0)
    params = {"G": G, "G_continuum": continuum, "simplex": "H"} if constrained else {}
    mu = _fit(X, beta_loss=beta_loss, tol=1e-12, max_iter=2000, **params)
    pgd = _fit(X, solver="pgd", beta_loss=beta_loss, tol=1e-12, max_iter=2000, **params)
    assert pgd.losses_[-1, -1] == pytest.approx(mu.losses_[-1, -1], rel=1e-6)


def _h_only(solver, data, G, W, H, settings, *, tol, max_iter=1500):
    loop = run_updates if solver == "mu" else run_gradient_updates
    extra = {} if solver == "mu" else {"solver": solver}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return loop(
            get_backend("reference"),
            data,
            G,
            W,
            H,
            settings,
            max_iter=max_iter,
            tol=tol,
            update_W=False,
            verbose=0,
            **extra,
        )


def _convex_h_problem(beta, lambda_L, l1):
    X, G, continuum = tiny_problem(2)
    rng = np.random.default_rng(0)
    W = _fit(X, G=G, G_continuum=continuum, simplex="H", beta_loss=beta).W_
    fixed = -np.ones((2, X.shape[0]))
    fixed[1, 4] = 0.3
    settings = _settings(shape_2d=(3, 4), lambda_L=lambda_L, simplex="H", fixed_H=fixed, l1=np.array(l1))
    data = prepare_masked_counts(X, np.float64, beta=beta, missing=rng.random(X.shape) < 0.1)
    H = np.full((2, X.shape[0]), 0.5)
    H[:, 4] = [0.7, 0.3]
    return data, G, W, H, settings


def test_convex_h_problem_with_every_constraint_same_optimum():
    """With W fixed and no log term, F is convex in H (1 <= β <= 2): one minimum, which
    both solvers must find: Laplacian, simplex, a held entry, L1, a mask (an interior
    optimum, where the multiplicative steps converge fast too)."""
    problem = _convex_h_problem(1.0, 2.0, [0.2, 0.5])
    _, H_mu, mu_losses, _, mu_converged = _h_only("mu", *problem, tol=1e-10)
    _, H_pgd, pgd_losses, _, pgd_converged = _h_only("pgd", *problem, tol=1e-10)
    assert mu_converged and pgd_converged
    assert pgd_losses[-1, -1] == pytest.approx(mu_losses[-1, -1], rel=1e-6)
    np.testing.assert_allclose(H_pgd, H_mu, atol=1e-3)
    assert mu_losses.shape[1] == 5  # divergence, laplacian, log, l1, total
    np.testing.assert_allclose(H_pgd.sum(axis=0), 1.0, atol=1e-12)
    assert H_pgd[1, 4] == 0.3


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_pgd_reaches_active_bounds_that_mu_approaches_slowly(beta):
    """Where the optimum has entries at the bound, the multiplicative steps approach it
    sublinearly; projected gradient lands on it (and no lower than the convex minimum)."""
    problem = _convex_h_problem(beta, 0.5, [0.2, 0.5])
    _, _, mu_losses, *_ = _h_only("mu", *problem, tol=0.0, max_iter=300)
    _, H_pgd, pgd_losses, _, converged = _h_only("pgd", *problem, tol=1e-12)
    assert converged and pgd_losses.shape[0] < 50
    assert pgd_losses[-1, -1] <= mu_losses[-1, -1]
    assert np.sum(H_pgd <= 1e-10) > 0


def test_kkt_conditions_hold_at_convergence_of_pgd():
    """∇F = 0 on the free entries above the bound, ∇F >= 0 at the bound (plain KL-NMF)."""
    X, _, _ = tiny_problem(3)
    fit = _fit(X, solver="pgd", tol=1e-14, max_iter=2000)
    data = prepare_masked_counts(X, np.float64, beta=1.0)
    W, H = fit.W_, fit.H_
    stats = statistics(data, W, H, for_H=True)
    scale = float(np.mean(stats["P_H"]))  # the size of one gradient term, Σ_i B_ik
    for value, gradient, size in (
        (H, h_gradient(stats, H), scale),
        (W, w_gradient(data, np.eye(X.shape[1]), W, H), float(H.sum(axis=1).mean())),
    ):
        at_bound = value <= 10 * fit.eps
        assert np.abs(gradient[~at_bound]).max() <= 1e-5 * size
        assert np.all(gradient[at_bound] >= -1e-5 * size)


def test_kkt_conditions_of_the_h_simplex():
    """Under the H simplex: ∇F + ν = 0 on the entries above the bound, >= 0 at it."""
    X, G, continuum = tiny_problem(4)
    fit = _fit(X, solver="pgd", G=G, G_continuum=continuum, simplex="H", tol=1e-13, max_iter=1500)
    data = prepare_masked_counts(X, np.float64, beta=1.0)
    stats = statistics(data, G @ fit.W_, fit.H_, for_H=True)
    gradient = h_gradient(stats, fit.H_)
    scale = float(np.mean(stats["P_H"]))
    interior = fit.H_ > 1e-6
    for column in range(X.shape[0]):
        inside = gradient[interior[:, column], column]
        multiplier = -inside.mean()
        np.testing.assert_allclose(inside + multiplier, 0.0, atol=1e-4 * scale)
        assert np.all(gradient[~interior[:, column], column] + multiplier >= -1e-4 * scale)


def test_l1_in_the_multiplicative_steps_is_monotone_and_sparsifies():
    """L1 on the first component under the H simplex (without a constraint that fixes the
    scale, W would absorb it: H/s, sW has the same fit and a smaller L1 term)."""
    X, G, continuum = tiny_problem(5)
    plain = _fit(X, G=G, G_continuum=continuum, simplex="H", tol=1e-10, max_iter=500)
    sparse = _fit(
        X, G=G, G_continuum=continuum, simplex="H", l1=[20.0, 0.0], tol=1e-10, max_iter=500, extrapolate=False
    )
    totals = np.r_[sparse.initial_losses_[-1], sparse.losses_[:, -1]]
    assert np.all(np.diff(totals) <= 1e-12 * np.abs(totals[:-1]))
    assert sparse.loss_names_ == ("kl_divergence", "laplacian", "log_sparsity", "l1_sparsity", "total")
    assert plain.loss_names_[-2:] == ("log_sparsity", "total")
    np.testing.assert_allclose(sparse.losses_[-1, 3], 20.0 * sparse.H_[0].sum(), rtol=1e-12)
    np.testing.assert_allclose(sparse.losses_[:, :4].sum(axis=1), sparse.losses_[:, 4])
    assert sparse.H_[0].mean() < plain.H_[0].mean() - 0.05
    assert np.sum(sparse.H_[0] < 1e-3) > np.sum(plain.H_[0] < 1e-3)


def test_adagrad_on_the_four_by_three_example_predicts_the_missing_entry():
    """A rank-2 4 x 3 matrix with one entry missing, a negative start of H, RMSE over the
    observed entries as the cost: Adagrad, projected, fills the missing entry in."""
    W_true = np.array([[1.0, 0.2], [0.5, 1.5], [2.0, 0.3], [0.1, 1.0]])
    H_true = np.array([[1.0, 0.5, 2.0], [0.3, 1.2, 0.4]])
    M = W_true @ H_true  # 4 channels x 3 pixels
    missing = np.zeros((3, 4), bool)
    missing[1, 2] = True  # M[2, 1]
    data = prepare_masked_counts(M.T, np.float64, beta=2.0, missing=missing)
    rng = np.random.default_rng(0)
    W0 = rng.uniform(0.5, 1.5, (4, 2))
    H0 = -rng.uniform(0.1, 1.0, (2, 3))  # deliberately negative: the projection fixes it
    W, H, losses, initial, converged = run_gradient_updates(
        None,
        data,
        np.eye(4),
        W0,
        H0,
        _settings(),
        max_iter=1500,
        tol=1e-13,
        update_W=True,
        verbose=0,
        solver="adagrad",
        learning_rate=3.0,
        warn_at_max_iter=False,
    )
    model = W @ H
    observed = np.ones(M.shape, bool)
    observed[2, 1] = False
    rmse = np.sqrt(np.mean((model - M)[observed] ** 2))
    assert np.all(np.isfinite(losses)) and losses.shape == (1500, 4)
    assert rmse < 1e-3  # measured 2.4e-4 after 1500 iterations
    # the missing entry M[2, 1] = 1.36 is predicted to within 3 % (measured 1.382: 1.6 %;
    # it is the least determined direction, reached last)
    assert abs(model[2, 1] - M[2, 1]) < 0.03 * M[2, 1]
    assert H.min() >= 1e-10


@pytest.mark.parametrize("beta_loss", ["kullback-leibler", "frobenius"])
def test_adagrad_reaches_the_mu_objective_on_a_masked_problem(beta_loss):
    X, _, _ = tiny_problem(0)
    mask = np.random.default_rng(1).random(X.shape) < 0.15
    mu = _fit(X, beta_loss=beta_loss, tol=1e-12, max_iter=3000, mask=mask)
    adagrad = _fit(
        X, solver="adagrad", learning_rate=0.3, beta_loss=beta_loss, tol=1e-10, max_iter=3000, mask=mask
    )
    assert adagrad.losses_[-1, -1] == pytest.approx(mu.losses_[-1, -1], rel=1e-3)
    assert adagrad.converged_


def test_adagrad_stops_cleanly_at_max_iter():
    X, _, _ = tiny_problem(0)
    with pytest.warns(ConvergenceWarning, match="max_iter=7"):
        fit = SmoothNMF(2, solver="adagrad", learning_rate=5.0, max_iter=7, tol=0.0, random_state=0).fit(X)
    assert fit.n_iter_ == 7 and fit.losses_.shape == (7, 4) and not fit.converged_
    assert np.all(np.isfinite(fit.losses_))


def test_gradient_solvers_in_float32_and_transform():
    X, G, continuum = tiny_problem(6)
    fit = _fit(
        X, solver="pgd", G=G, G_continuum=continuum, simplex="H", dtype="float32", max_iter=50, tol=0.0
    )
    assert fit.H_.dtype == np.float32
    totals = np.r_[fit.initial_losses_[-1], fit.losses_[:, -1]]
    assert np.all(np.diff(totals) <= 1e-5 * np.abs(totals[:-1]))
    assert fit.transform(X).shape == (X.shape[0], 2)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"solver": "sgd"}, "solver='sgd' is not valid"),
        ({"solver": "adagrad", "learning_rate": 0.0}, "learning_rate=0.0 is not valid"),
        ({"l1": -1.0}, "l1=-1.0 is not valid"),
        ({"l1": [1.0, 2.0, 3.0]}, "l1 has 3 values"),
        ({"solver": "pgd", "backend": "numba"}, "backend='numba' serves solver='mu' without l1"),
    ],
)
def test_bad_solver_parameters(params, message):
    X, _, _ = tiny_problem(0)
    with pytest.raises(ValueError, match=message):
        SmoothNMF(2, **params).fit(X)
