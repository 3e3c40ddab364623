"""The vectorised updates agree with a slow loop-by-loop implementation (tiny problems)."""

import itertools
import warnings

import numpy as np
import pytest
import solver_loop_reference as loops
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF
from espm_cli.solver.initialization import make_feasible

SHAPE = (3, 4)
K = 2
N_ITER = 20

VARIANTS = list(
    itertools.product([True, False], [0.0, 1.5], ["none", "per_component"], [None, "H", "W"], [False, True])
)


def _fixed_entries(m, n_pixels, simplex):
    fixed_W = -np.ones((m, K))
    fixed_H = -np.ones((K, n_pixels))
    fixed_W[1, 0] = 0.2
    fixed_W[m - 1, 1] = 0.4
    fixed_H[0, 3] = 0.3
    fixed_H[1, 7] = 0.6
    if simplex != "H":
        fixed_H *= 50
    return fixed_W, fixed_H


@pytest.mark.parametrize("with_G, lambda_L, mu_kind, simplex, with_fixed", VARIANTS)
def test_agrees_with_loop_reference(with_G, lambda_L, mu_kind, simplex, with_fixed):
    X, G, continuum = tiny_problem(seed=3, shape_2d=SHAPE, n_components=K, with_G=with_G)
    G_matrix = np.eye(X.shape[1]) if G is None else G
    m = G_matrix.shape[1]
    simplex_rows = None
    if simplex == "W":
        simplex_rows = ~continuum if with_G else np.ones(m, bool)
    fixed_W, fixed_H = _fixed_entries(m, X.shape[0], simplex) if with_fixed else (None, None)
    mu = np.array([0.0, 0.0]) if mu_kind == "none" else np.array([0.7, 2.0])
    rng = np.random.default_rng(5)
    W0, H0 = make_feasible(
        G_matrix,
        rng.uniform(0.3, 1, (m, K)),
        rng.uniform(0.3, 1, (K, X.shape[0])),
        X.sum(),
        simplex=simplex,
        simplex_rows=simplex_rows,
        fixed_W=fixed_W,
        fixed_H=fixed_H,
        eps=1e-10,
    )
    estimator = SmoothNMF(
        K,
        G=G,
        G_continuum=continuum if with_G else None,
        extrapolate=False,
        lambda_L=lambda_L,
        mu=mu,
        epsilon_reg=0.5,
        simplex=simplex,
        shape_2d=SHAPE,
        init="custom",
        max_iter=N_ITER,
        tol=0.0,
        fixed_W=fixed_W,
        fixed_H=fixed_H,
        backend="reference",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, W=W0, H=H0)
    assert estimator.n_iter_ == N_ITER

    W_loop, H_loop = loops.fit(
        X.T.tolist(),
        G_matrix.tolist(),
        W0.tolist(),
        H0.tolist(),
        N_ITER,
        shape_2d=SHAPE,
        lambda_L=lambda_L,
        mu=mu.tolist(),
        epsilon_reg=0.5,
        simplex=simplex,
        simplex_rows=None if simplex_rows is None else simplex_rows.tolist(),
        fixed_W=None if fixed_W is None else fixed_W.tolist(),
        fixed_H=None if fixed_H is None else fixed_H.tolist(),
        eps=1e-10,
    )
    np.testing.assert_allclose(estimator.W_, np.array(W_loop), rtol=1e-10, atol=0)
    np.testing.assert_allclose(estimator.H_, np.array(H_loop), rtol=1e-10, atol=0)
    F_loop = loops.objective(
        X.T.tolist(), G_matrix.tolist(), W_loop, H_loop, SHAPE, lambda_L, mu.tolist(), 0.5
    )
    assert estimator.losses_[-1, 3] == pytest.approx(F_loop, rel=1e-10)
