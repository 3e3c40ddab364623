"""The numba backend's steps against a tiny dense numpy transcription of docs/solver.md.

The dense functions below are written straight from the formulas (explicit adjacency
matrix, plain bisection for the simplex multiplier), independently of both backends.
"""

import numpy as np
import pytest
from scipy.special import xlogy

from espm_cli.solver import _numba_backend as fast
from espm_cli.solver import _numba_kernels as kernels
from espm_cli.solver.simplex import simplex_root

SHAPE_2D = (5, 6)
N_CHANNELS, N_ELEMENTS, K = 17, 4, 3


def _adjacency(shape_2d):
    ny, nx = shape_2d
    A = np.zeros((ny * nx, ny * nx))
    for iy in range(ny):
        for ix in range(nx):
            p = iy * nx + ix
            for dy, dx in ((0, 1), (1, 0)):
                if iy + dy < ny and ix + dx < nx:
                    q = (iy + dy) * nx + ix + dx
                    A[p, q] = A[q, p] = 1.0
    return A


def _minimiser(a, beta, c):
    with np.errstate(divide="ignore"):
        return 2 * c / (beta + np.sqrt(beta * beta + 8 * a * c))


def _bisect_simplex(a, beta, c, free, target, eps):
    """Plain bisection on ν for Σ_free max(eps, h*(β + ν)) = target (one group)."""
    if a == 0 and np.all(c[free] == 0):  # linear: the mass goes to the smallest β
        h = np.full_like(beta, eps)
        h[np.flatnonzero(free)[np.argmin(beta[free])]] = target - (free.sum() - 1) * eps
        return h

    def total(nu):
        return np.sum(np.maximum(eps, _minimiser(a, beta[free] + nu, c[free])))

    low = -np.min(beta[free]) + 1e-300 if np.all(a == 0) else -np.max(beta) - 1e6
    high = np.max(beta) + 1e6 + np.sum(c) / (target - free.sum() * eps)
    for _ in range(3000):
        mid = 0.5 * (low + high)
        if total(mid) > target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-16 * max(abs(low), abs(high)):
            break
    return np.maximum(eps, _minimiser(a, beta + 0.5 * (low + high), c))


def dense_objective(X, G, W, H, lambda_L, mu, epsilon_reg):
    Y = G @ W @ H
    kl = np.sum(Y - X + xlogy(X, X) - xlogy(X, Y))
    A = _adjacency(SHAPE_2D)
    laplacian_matrix = np.diag(A.sum(axis=1)) - A
    laplacian = 0.5 * lambda_L * np.trace(H @ laplacian_matrix @ H.T)
    log_sparsity = np.sum(mu[:, None] * np.log(H + epsilon_reg))
    return np.array([kl, laplacian, log_sparsity])


def dense_h_step(X, G, W, H, lambda_L, mu, epsilon_reg, simplex, fixed, eps):
    B = G @ W
    ratio = np.where(X > 0, X / (B @ H), 0.0)
    A = _adjacency(SHAPE_2D)
    a = 0.5 * lambda_L * A.sum(axis=1)[None, :] * np.ones_like(H)
    beta = B.sum(axis=0)[:, None] + mu[:, None] / (H + epsilon_reg)
    c = H * (B.T @ ratio) + lambda_L * H * (H @ A)
    free = fixed < 0
    H_new = np.maximum(eps, _minimiser(a, beta, c))
    if simplex:
        for p in range(H.shape[1]):
            target = 1.0 - np.sum(fixed[~free[:, p], p])
            H_new[:, p] = _bisect_simplex(a[0, p], beta[:, p], c[:, p], free[:, p], target, eps)
    return np.where(free, H_new, fixed)


def dense_w_step(X, G, W, H, eps):
    ratio = np.where(X > 0, X / (G @ W @ H), 0.0)
    numerator = W * (G.T @ ratio @ H.T)
    return np.maximum(eps, numerator / np.outer(G.sum(axis=0), H.sum(axis=1)))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(42)
    n_pixels = SHAPE_2D[0] * SHAPE_2D[1]
    G = rng.random((N_CHANNELS, N_ELEMENTS)) + 0.05
    W = rng.random((N_ELEMENTS, K)) + 0.1
    H = rng.dirichlet(np.ones(K), size=n_pixels).T
    X = rng.poisson(3.0 * G @ W @ H).astype(np.float64)  # channels x pixels, ~40 % zeros
    X[:, 7] = 0.0  # an empty pixel
    return X, G, W, H


PARAMETERS = [
    dict(lambda_L=0.0, mu=np.zeros(K), simplex=False, fixed=False),
    dict(lambda_L=1.5, mu=np.zeros(K), simplex=False, fixed=False),
    dict(lambda_L=0.0, mu=np.array([0.2, 0.0, 1.0]), simplex=False, fixed=True),
    dict(lambda_L=0.7, mu=np.full(K, 0.3), simplex=True, fixed=False),
    dict(lambda_L=0.0, mu=np.zeros(K), simplex=True, fixed=True),
    dict(lambda_L=2.0, mu=np.array([0.5, 0.1, 0.0]), simplex=True, fixed=True),
]


def _fixed_entries(H, use):
    fixed = -np.ones_like(H)
    if use:
        fixed[1, ::4] = 0.25
    return fixed


@pytest.mark.parametrize("params", PARAMETERS)
def test_h_step_and_objective_match_dense_formulas(problem, params):
    X, G, W, H = problem
    fixed = _fixed_entries(H, params["fixed"])
    data = fast.prepare_counts(X.T)
    regularisation = dict(shape_2d=SHAPE_2D, lambda_L=params["lambda_L"], mu=params["mu"], epsilon_reg=1.0)
    terms = fast.objective_terms(data, G, W, H, **regularisation)
    np.testing.assert_allclose(
        terms, dense_objective(X, G, W, H, params["lambda_L"], params["mu"], 1.0), rtol=1e-12, atol=1e-12
    )
    H_new = fast.h_step(
        data,
        G,
        W,
        H,
        simplex=params["simplex"],
        fixed=fixed if params["fixed"] else None,
        eps=1e-10,
        **regularisation,
    )
    expected = dense_h_step(
        X, G, W, H, params["lambda_L"], params["mu"], 1.0, params["simplex"], fixed, 1e-10
    )
    np.testing.assert_allclose(H_new, expected, rtol=1e-10, atol=1e-14)
    if params["simplex"]:
        np.testing.assert_allclose(H_new.sum(axis=0), 1.0, rtol=1e-12)
    # The MM step never increases the objective.
    after = fast.objective_terms(data, G, W, H_new, **regularisation).sum()
    assert after <= terms.sum() + 1e-12 * abs(terms.sum())


def test_w_step_matches_dense_formula_with_and_without_the_workspace(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T)
    H_new, workspace = fast.h_step(data, G, W, H, share=True)  # the W numerator
    assert np.array_equal(H_new, fast.h_step(data, G, W, H))
    W_shared, _ = fast.w_step(data, G, W, H_new, workspace=workspace, share=True)
    W_fresh = fast.w_step(data, G, W, H_new)
    expected = dense_w_step(X, G, W, H_new, 1e-10)
    np.testing.assert_allclose(W_shared, expected, rtol=1e-12)
    np.testing.assert_allclose(W_fresh, expected, rtol=1e-12)


def test_h_step_with_the_workspace_of_evaluate_equals_a_fresh_one(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T)
    regularisation = dict(shape_2d=SHAPE_2D, lambda_L=1.0, mu=np.full(K, 0.2))
    terms, workspace = fast.evaluate(data, G, W, H, **regularisation)
    np.testing.assert_array_equal(terms, fast.objective_terms(data, G, W, H, **regularisation))
    shared = fast.h_step(data, G, W, H, simplex=True, workspace=workspace, **regularisation)
    fresh = fast.h_step(data, G, W, H, simplex=True, **regularisation)
    np.testing.assert_array_equal(shared, fresh)


def test_prepared_data_holds_no_state_of_the_iterates(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T)
    first = fast.h_step(data, G, W, H)
    fast.evaluate(data, G, W * 2.0, H)  # nothing of it may leak into the next step
    fast.h_step(data, G, W, H * 3.0, share=True)
    np.testing.assert_array_equal(fast.h_step(data, G, W, H), first)
    np.testing.assert_array_equal(
        fast.w_step(data, G, W, first), fast.w_step(fast.prepare_counts(X.T), G, W, first)
    )


def test_a_workspace_for_other_arrays_is_refused(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T)
    _, workspace = fast.evaluate(data, G, W, H)
    with pytest.raises(ValueError, match="other W and H"):
        fast.h_step(data, G, W, H.copy(), workspace=workspace)
    H_new, workspace = fast.h_step(data, G, W, H, share=True)
    with pytest.raises(ValueError, match="other W and H"):
        fast.w_step(data, G, W.copy(), H_new, workspace=workspace)


def test_simplex_on_w_rows(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T)
    rows = np.array([True, True, True, False])
    W_new = fast.w_step(data, G, W, H, simplex_rows=rows)
    np.testing.assert_allclose(W_new[rows].sum(axis=0), 1.0, rtol=1e-12)
    unconstrained = dense_w_step(X, G, W, H, 1e-10)
    np.testing.assert_allclose(W_new[~rows], unconstrained[~rows], rtol=1e-12)


def test_identity_G_takes_the_no_product_path(problem):
    X, _, W, H = problem
    rng = np.random.default_rng(1)
    W_full = rng.random((N_CHANNELS, K)) + 0.1
    data = fast.prepare_counts(X.T)
    G = np.eye(N_CHANNELS)
    assert data.is_identity(G) and not data.is_identity(G * 2)
    H_new = fast.h_step(data, G, W_full, H)
    W_new = fast.w_step(data, G, W_full, H_new)
    np.testing.assert_allclose(
        H_new,
        dense_h_step(X, G, W_full, H, 0.0, np.zeros(K), 1.0, False, -np.ones_like(H), 1e-10),
        rtol=1e-10,
    )
    np.testing.assert_allclose(W_new, dense_w_step(X, G, W_full, H_new, 1e-10), rtol=1e-12)


@pytest.mark.parametrize("simplex", [False, True])
def test_results_do_not_depend_on_the_thread_count(problem, monkeypatch, simplex):
    X, G, W, H = problem
    results = []
    for n_threads in (1, 2, 3):
        monkeypatch.setattr(fast, "_n_threads", lambda n=n_threads: n)
        data = fast.prepare_counts(X.T)
        data.block_start = fast.pixel_blocks(data.nonzeros.pixel_start, n_blocks=7)
        H_new = fast.h_step(
            data, G, W, H, shape_2d=SHAPE_2D, lambda_L=1.0, mu=np.full(K, 0.1), simplex=simplex
        )
        W_new = fast.w_step(data, G, W, H_new)
        terms = fast.objective_terms(
            data, G, W_new, H_new, shape_2d=SHAPE_2D, lambda_L=1.0, mu=np.full(K, 0.1)
        )
        results.append((H_new, W_new, terms))
    for H_new, W_new, terms in results[1:]:
        np.testing.assert_array_equal(H_new, results[0][0])
        np.testing.assert_array_equal(W_new, results[0][1])
        np.testing.assert_array_equal(terms, results[0][2])


def test_pixel_blocks_cover_all_pixels_in_order():
    pixel_start = np.concatenate([[0], np.cumsum(np.arange(100) % 7)]).astype(np.int64)
    for n_blocks in (None, 1, 5, 200):
        blocks = fast.pixel_blocks(pixel_start, n_blocks)
        assert blocks[0] == 0 and blocks[-1] == 100
        assert np.all(np.diff(blocks) > 0)


def test_simplex_root_linear_group_puts_mass_on_smallest_beta():
    out = np.zeros(3)
    simplex_root(np.zeros(3), np.array([2.0, 1.0, 3.0]), np.zeros(3), np.ones(3, bool), 3, 1.0, 1e-10, out)
    np.testing.assert_allclose(out, [1e-10, 1.0 - 2e-10, 1e-10])


@pytest.mark.parametrize("a", [0.0, 0.8])
def test_simplex_root_matches_bisection(a):
    rng = np.random.default_rng(3)
    guess_rng = np.random.default_rng(4)
    for _ in range(20):
        beta = rng.random(4) * 3
        c = rng.random(4) * rng.choice([1e-3, 1.0, 1e3])
        free = np.array([True, True, False, True])
        out = np.full(4, -1.0)
        simplex_root(np.full(4, a), beta, c, free, 4, 0.8, 1e-10, out)
        expected = _bisect_simplex(a, beta, c, free, 0.8, 1e-10)
        np.testing.assert_allclose(out[free], expected[free], rtol=1e-9)
        assert out[2] == -1.0
        assert out[free].sum() == pytest.approx(0.8, rel=1e-12)
        # A start from a guess (good: the answer perturbed; poor: random) finds the same root.
        for guess in (expected * (1 + 1e-3 * guess_rng.standard_normal(4)), guess_rng.random(4)):
            started = np.full(4, -1.0)
            simplex_root(np.full(4, a), beta, c, free, 4, 0.8, 1e-10, started, guess=guess)
            np.testing.assert_allclose(started[free], expected[free], rtol=1e-9)
            assert started[2] == -1.0


def test_stream_bound_is_measured(problem):
    X = problem[0]
    assert fast.stream_nonzeros_seconds(fast.prepare_counts(X.T), repeats=1) > 0


def test_weighted_log_sum_matches_math_log():
    rng = np.random.default_rng(5)
    model = np.concatenate(
        [
            np.exp(rng.uniform(-700, 700, 5000)),
            [1.0, 2.0, 0.5, np.sqrt(2.0), 1 / np.sqrt(2.0), 3.0, 1e-300, 1e300],
        ]
    )
    counts = rng.integers(1, 50, model.size).astype(np.float32)
    bits = np.empty(model.size, dtype=np.int64)
    expected = np.log(model)
    for t in range(0, model.size, 97):
        one = kernels.weighted_log_sum(model[t : t + 1], np.ones(1), bits)
        assert one == pytest.approx(expected[t], rel=4e-16, abs=4e-16)
    total = kernels.weighted_log_sum(model, counts, bits)
    assert total == pytest.approx(np.sum(counts * expected), rel=1e-13)
