"""F never increases, and the constraints hold, for every variant and both dtypes."""

import itertools
import warnings

import numpy as np
import pytest
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF, get_backend
from espm_cli.solver.counts import prepare_counts
from espm_cli.solver.initialization import make_feasible

SHAPE = (5, 6)
K = 3
EPS = 1e-10
# float64 rounding; float32 factors (F itself is summed in float64).
RELATIVE_SLACK = {"float64": 1e-12, "float32": 1e-5}

VARIANTS = list(
    itertools.product([True, False], [0.0, 4.0], [0.0, 1.0, (0.0, 0.5, 5.0)], [None, "H", "W"], [False, True])
)


def _problem(with_G, simplex, with_fixed):
    X, G, continuum = tiny_problem(seed=11, n_channels=16, shape_2d=SHAPE, n_components=K, with_G=with_G)
    m = 16 if G is None else G.shape[1]
    fixed_W = fixed_H = None
    if with_fixed:
        fixed_W = -np.ones((m, K))
        fixed_W[0, 1] = 0.25
        fixed_H = -np.ones((K, X.shape[0]))
        fixed_H[2, :4] = 0.1 if simplex == "H" else 3.0
    return X, G, continuum, fixed_W, fixed_H


def _fit(X, G, continuum, *, dtype, max_iter=25, **params):
    estimator = SmoothNMF(
        K,
        G=G,
        G_continuum=None if G is None else continuum,
        shape_2d=SHAPE,
        init="random",
        random_state=0,
        max_iter=max_iter,
        tol=0.0,
        dtype=dtype,
        backend="reference",
        eps=EPS,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, with_fixed", VARIANTS)
def test_objective_never_increases(with_G, lambda_L, mu, simplex, with_fixed, dtype):
    X, G, continuum, fixed_W, fixed_H = _problem(with_G, simplex, with_fixed)
    estimator = _fit(
        X,
        G,
        continuum,
        dtype=dtype,
        lambda_L=lambda_L,
        mu=mu,
        simplex=simplex,
        fixed_W=fixed_W,
        fixed_H=fixed_H,
    )
    totals = np.concatenate([[estimator.initial_losses_[3]], estimator.losses_[:, 3]])
    increases = np.diff(totals)
    assert np.all(increases <= RELATIVE_SLACK[dtype] * np.abs(totals[:-1])), increases.max()
    assert totals[-1] < totals[0]
    np.testing.assert_allclose(estimator.losses_[:, :3].sum(axis=1), estimator.losses_[:, 3])
    assert estimator.W_.dtype == np.dtype(dtype) and estimator.H_.dtype == np.dtype(dtype)

    # Constraints: bounds, simplex, fixed entries.
    assert estimator.W_.min() >= EPS * 0.999 and estimator.H_.min() >= EPS * 0.999
    if simplex == "H":
        np.testing.assert_allclose(estimator.H_.sum(axis=0), 1.0, atol=1e-6)
    if simplex == "W":
        rows = ~continuum if with_G else np.ones(16, bool)
        np.testing.assert_allclose(estimator.W_[rows].sum(axis=0), 1.0, atol=1e-6)
    if with_fixed:
        held_W, held_H = fixed_W >= 0, fixed_H >= 0
        np.testing.assert_allclose(estimator.W_[held_W], fixed_W[held_W], rtol=1e-6)
        np.testing.assert_allclose(estimator.H_[held_H], fixed_H[held_H], rtol=1e-6)


@pytest.mark.parametrize("simplex", [None, "H", "W"])
@pytest.mark.parametrize("lambda_L, mu", [(0.0, 0.0), (6.0, (0.0, 1.0, 8.0))])
def test_each_half_step_decreases_objective(simplex, lambda_L, mu):
    """The H step and the W step are each monotone (checked on the step functions)."""
    X, G, continuum, _, _ = _problem(True, simplex, False)
    backend = get_backend("reference")
    data = prepare_counts(X, np.float64)
    rng = np.random.default_rng(2)
    rows = ~continuum
    W, H = make_feasible(
        G,
        rng.uniform(0.1, 1, (G.shape[1], K)),
        rng.uniform(0.1, 1, (K, 30)),
        X.sum(),
        simplex=simplex,
        simplex_rows=rows,
        fixed_W=None,
        fixed_H=None,
        eps=EPS,
    )
    regularisation = dict(shape_2d=SHAPE, lambda_L=lambda_L, mu=np.broadcast_to(mu, (K,)), epsilon_reg=0.3)
    previous = backend.objective_terms(data, G, W, H, **regularisation).sum()
    for _ in range(15):
        H = backend.h_step(data, G, W, H, simplex=simplex == "H", eps=EPS, **regularisation)
        after_H = backend.objective_terms(data, G, W, H, **regularisation).sum()
        W = backend.w_step(data, G, W, H, simplex_rows=rows if simplex == "W" else None, eps=EPS)
        after_W = backend.objective_terms(data, G, W, H, **regularisation).sum()
        assert after_H <= previous + 1e-12 * abs(previous)
        assert after_W <= after_H + 1e-12 * abs(after_H)
        previous = after_W


def test_laplacian_update_is_monotone_where_the_heuristic_fails():
    """A large lambda_L: the majorizer of docs/solver.md keeps F decreasing."""
    X, G, continuum, _, _ = _problem(True, None, False)
    estimator = _fit(X, G, continuum, dtype="float64", lambda_L=1e4, max_iter=40)
    totals = np.concatenate([[estimator.initial_losses_[3]], estimator.losses_[:, 3]])
    assert np.all(np.diff(totals) <= 1e-12 * np.abs(totals[:-1]))
    assert estimator.losses_[-1, 1] < estimator.initial_losses_[1]
