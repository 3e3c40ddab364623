"""β-divergences and missing entries: monotone half-steps, a slow loop reference, KL path."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import solver_beta_loop_reference as loops
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF, get_backend
from espm_cli.solver.initialization import make_feasible
from espm_cli.solver.masked_counts import prepare_masked_counts

SHAPE = (5, 6)
K = 3
EPS = 1e-10
RELATIVE_SLACK = {"float64": 1e-12, "float32": 1e-5}
BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
# (with G, lambda_L, mu, simplex, fixed entries, mask): a covering set, not the product.
OPTIONS = [
    (True, 0.0, 0.0, None, False, None),
    (True, 4.0, (0.0, 0.5, 5.0), "H", True, "entries"),
    (False, 4.0, 1.0, "W", False, "entries"),
    (True, 0.0, 1.0, "W", True, None),
    (False, 0.0, 0.0, "H", True, "pixels"),
    (True, 4.0, 0.0, None, True, "pixels"),
]


def _masks(kind, n_pixels, n_channels, seed=4):
    """(observed pixels, missing entries) as prepare_masked_counts takes them."""
    rng = np.random.default_rng(seed)
    if kind == "entries":
        return None, sp.csr_array(rng.random((n_pixels, n_channels)) < 0.15)
    if kind == "pixels":
        observed = np.ones(n_pixels, bool)
        observed[[2, 9, 17]] = False
        return observed, None
    return None, None


def _start(G, m, n_pixels, total, simplex, rows, fixed_W, fixed_H, seed=2):
    rng = np.random.default_rng(seed)
    return make_feasible(
        G,
        rng.uniform(0.1, 1, (m, K)),
        rng.uniform(0.1, 1, (K, n_pixels)),
        total,
        simplex=simplex,
        simplex_rows=rows,
        fixed_W=fixed_W,
        fixed_H=fixed_H,
        eps=EPS,
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, with_fixed, mask", OPTIONS)
def test_every_half_step_is_monotone(beta, with_G, lambda_L, mu, simplex, with_fixed, mask, dtype):
    X, G, continuum = tiny_problem(seed=11, n_channels=16, shape_2d=SHAPE, n_components=K, with_G=with_G)
    G = np.eye(16) if G is None else G
    m, n_pixels = G.shape[1], X.shape[0]
    rows = None
    if simplex == "W":
        rows = ~continuum if with_G else np.ones(m, bool)
    fixed_W = fixed_H = None
    if with_fixed:
        fixed_W = -np.ones((m, K))
        fixed_W[0, 1] = 0.25
        fixed_H = -np.ones((K, n_pixels))
        fixed_H[2, :4] = 0.1 if simplex == "H" else 3.0
    observed, missing = _masks(mask, n_pixels, 16)
    data = prepare_masked_counts(X, np.dtype(dtype), beta=beta, observed_pixels=observed, missing=missing)
    W, H = _start(G, m, n_pixels, X.sum(), simplex, rows, fixed_W, fixed_H)
    G, W, H = G.astype(dtype), W.astype(dtype), H.astype(dtype)
    backend = get_backend("reference")
    regularisation = dict(shape_2d=SHAPE, lambda_L=lambda_L, mu=np.broadcast_to(mu, (K,)), epsilon_reg=0.3)

    def objective(W, H):
        return backend.objective_terms(data, G, W, H, **regularisation).sum()

    values = [objective(W, H)]
    for _ in range(12):
        H = backend.h_step(data, G, W, H, simplex=simplex == "H", fixed=fixed_H, eps=EPS, **regularisation)
        values.append(objective(W, H))
        W = backend.w_step(
            data, G, W, H, simplex_rows=rows if simplex == "W" else None, fixed=fixed_W, eps=EPS
        )
        values.append(objective(W, H))
    values = np.array(values)
    increases = np.diff(values)
    assert np.all(increases <= RELATIVE_SLACK[dtype] * np.abs(values[:-1])), increases.max()
    assert values[-1] < values[0]
    assert W.dtype == np.dtype(dtype) and H.dtype == np.dtype(dtype)
    assert W.min() >= EPS * 0.999 and H.min() >= EPS * 0.999
    if simplex == "H":
        np.testing.assert_allclose(H.sum(axis=0), 1.0, atol=1e-5)
    if simplex == "W":
        np.testing.assert_allclose(W[rows].sum(axis=0), 1.0, atol=1e-5)
    if with_fixed:
        np.testing.assert_allclose(W[fixed_W >= 0], fixed_W[fixed_W >= 0], rtol=1e-6)
        np.testing.assert_allclose(H[fixed_H >= 0], fixed_H[fixed_H >= 0], rtol=1e-6)


LOOP_SHAPE = (2, 3)
LOOP_CASES = [  # beta, lambda_L, mu, simplex, masked entries
    (0.0, 0.0, (0.0, 0.0), None, False),
    (0.5, 1.5, (0.7, 2.0), None, False),
    (0.5, 0.0, (0.0, 0.0), "H", True),
    (1.5, 1.5, (0.0, 0.0), "H", False),
    (2.0, 1.5, (0.7, 2.0), None, True),
    (3.0, 0.0, (0.7, 0.0), "H", False),
    (3.0, 1.5, (0.0, 0.0), None, True),
    (1.0, 1.5, (0.7, 2.0), "H", True),  # masked KL
    (1.0, 0.0, (0.0, 0.0), None, True),
]


@pytest.mark.parametrize("beta, lambda_L, mu, simplex, masked", LOOP_CASES)
def test_agrees_with_slow_loop_reference(beta, lambda_L, mu, simplex, masked):
    X, G, _ = tiny_problem(seed=3, n_channels=5, shape_2d=LOOP_SHAPE, n_components=2)
    G = G[:, [0, 1, 3]]
    n_pixels = X.shape[0]
    missing = np.zeros(X.shape, bool)
    if masked:
        missing[[0, 2, 3, 5], [1, 4, 0, 2]] = True
    rng = np.random.default_rng(5)
    # Matched to the observed counts, as the estimator's projection of the start does.
    W0, H0 = make_feasible(
        G,
        rng.uniform(0.3, 1, (3, 2)),
        rng.uniform(0.3, 1, (2, n_pixels)),
        X[~missing].sum(),
        simplex=simplex,
        simplex_rows=None,
        fixed_W=None,
        fixed_H=None,
        eps=1e-10,
    )
    estimator = SmoothNMF(
        2,
        G=G,
        beta_loss=beta,
        lambda_L=lambda_L,
        mu=np.array(mu),
        epsilon_reg=0.5,
        simplex=simplex,
        shape_2d=LOOP_SHAPE,
        init="custom",
        max_iter=20,
        tol=0.0,
        mask=missing,
        extrapolate=False,
        backend="reference",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, W=W0, H=H0)
    M = (~missing).T.astype(int).tolist()
    W_loop, H_loop = loops.fit(
        X.T.tolist(),
        M,
        G.tolist(),
        W0.tolist(),
        H0.tolist(),
        beta,
        20,
        shape_2d=LOOP_SHAPE,
        lambda_L=lambda_L,
        mu=list(mu),
        epsilon_reg=0.5,
        simplex=simplex,
    )
    np.testing.assert_allclose(estimator.W_, np.array(W_loop), rtol=1e-10, atol=0)
    np.testing.assert_allclose(estimator.H_, np.array(H_loop), rtol=1e-10, atol=0)
    F_loop = loops.objective(
        X.T.tolist(), M, G.tolist(), W_loop, H_loop, beta, LOOP_SHAPE, lambda_L, list(mu), 0.5
    )
    assert estimator.losses_[-1, 3] == pytest.approx(F_loop, rel=1e-10)


@pytest.mark.parametrize(
    "simplex, lambda_L, mu", [(None, 0.0, 0.0), ("H", 3.0, (0.2, 1.0, 4.0)), ("W", 3.0, 0.5)]
)
def test_general_path_at_beta_one_matches_the_kl_path(simplex, lambda_L, mu):
    """The general steps with β = 1 and nothing masked give today's KL steps (1e-12)."""
    X, G, continuum = tiny_problem(seed=11, n_channels=16, shape_2d=SHAPE, n_components=K)
    rows = ~continuum if simplex == "W" else None
    backend = get_backend("reference")
    kl_data = backend.prepare_counts(X, np.float64)
    general_data = prepare_masked_counts(X, np.float64, beta=1.0)
    W0, H0 = _start(G, G.shape[1], X.shape[0], X.sum(), simplex, rows, None, None)
    regularisation = dict(shape_2d=SHAPE, lambda_L=lambda_L, mu=np.broadcast_to(mu, (K,)), epsilon_reg=0.3)
    results = []
    for data in (kl_data, general_data):
        W, H = W0.copy(), H0.copy()
        for _ in range(20):
            H = backend.h_step(data, G, W, H, simplex=simplex == "H", eps=EPS, **regularisation)
            W = backend.w_step(data, G, W, H, simplex_rows=rows, eps=EPS)
        results.append((W, H, backend.objective_terms(data, G, W, H, **regularisation)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=1e-12, atol=1e-9)
