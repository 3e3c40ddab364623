"""SemiNMF: monotone steps, a slow reference, signed codes, scikit-learn checks, hyperspy."""

import warnings
from functools import partial

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from espm_cli.solver import SemiNMF
from espm_cli.solver.semi_nmf import SOLVERS, _Problem, objective_terms, pgd_dictionary_step


def signed_problem(seed=0, n_samples=40, n_features=12, k=3, noise=0.01):
    """Signed codes, a nonnegative dictionary with one private feature per atom."""
    rng = np.random.default_rng(seed)
    D = rng.uniform(0.0, 0.3, (k, n_features))
    D[np.arange(k), np.arange(k)] = 2.0  # separable: the atoms are identifiable
    Z = rng.normal(0.0, 1.0, (n_samples, k))
    X = Z @ D + noise * rng.normal(size=(n_samples, n_features))
    return X, Z, D


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = SemiNMF(random_state=0, **params)
        return estimator, estimator.fit_transform(X)


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("l1", [0.0, 0.5])
@pytest.mark.parametrize("with_G", [False, True])
def test_every_half_step_lowers_the_objective(solver, l1, with_G):
    X, _, _ = signed_problem(1)
    rng = np.random.default_rng(2)
    G = rng.uniform(0.0, 1.0, (X.shape[1], 5)) if with_G else None
    problem = _Problem(X, G)
    code_step, dictionary_step = SOLVERS[solver]
    W = rng.uniform(0.1, 1.0, (X.shape[1] if G is None else 5, 3))
    if l1 > 0:  # as the fit does: atoms in the unit ball, projected gradient steps
        W /= np.linalg.norm(W, axis=0)
        dictionary_step = partial(pgd_dictionary_step, unit_ball=True)
    Z = rng.normal(size=(X.shape[0], 3))
    values = [objective_terms(X, Z, problem.dictionary(W), l1)[-1]]
    for _ in range(30):
        Z = code_step(problem, Z, W, l1)
        values.append(objective_terms(X, Z, problem.dictionary(W), l1)[-1])
        W = dictionary_step(problem, Z, W)
        values.append(objective_terms(X, Z, problem.dictionary(W), l1)[-1])
        assert W.min() >= 0
        if l1 > 0:
            assert np.linalg.norm(W, axis=0).max() <= 1 + 1e-12
    assert np.all(np.diff(values) <= 1e-12 * np.abs(values[:-1]))
    assert values[-1] < 0.5 * values[0]


def reference_semi_nmf(X, D, n_iterations):
    """Ding, Li & Jordan's updates written entry by entry (no library linear algebra
    beyond a k x k solve by Gauss elimination)."""
    n, f = len(X), len(X[0])
    k = len(D)
    D = [list(row) for row in D]
    for _ in range(n_iterations):
        # Z = X Dᵀ (D Dᵀ)⁻¹: solve (D Dᵀ) zᵀ = D xᵀ for every sample
        gram = [[sum(D[a][j] * D[b][j] for j in range(f)) for b in range(k)] for a in range(k)]
        Z = []
        for i in range(n):
            rhs = [sum(D[a][j] * X[i][j] for j in range(f)) for a in range(k)]
            A = [gram[a][:] + [rhs[a]] for a in range(k)]
            for col in range(k):
                pivot = max(range(col, k), key=lambda r: abs(A[r][col]))
                A[col], A[pivot] = A[pivot], A[col]
                for r in range(k):
                    if r != col:
                        factor = A[r][col] / A[col][col]
                        A[r] = [A[r][c] - factor * A[col][c] for c in range(k + 1)]
            Z.append([A[a][k] / A[a][a] for a in range(k)])
        # D ← D sqrt(((ZᵀX)⁺ + (ZᵀZ)⁻ D) / ((ZᵀX)⁻ + (ZᵀZ)⁺ D))
        ZX = [[sum(Z[i][a] * X[i][j] for i in range(n)) for j in range(f)] for a in range(k)]
        ZZ = [[sum(Z[i][a] * Z[i][b] for i in range(n)) for b in range(k)] for a in range(k)]
        new = [[0.0] * f for _ in range(k)]
        for a in range(k):
            for j in range(f):
                top = max(ZX[a][j], 0.0) + sum(max(-ZZ[a][b], 0.0) * D[b][j] for b in range(k))
                bottom = max(-ZX[a][j], 0.0) + sum(max(ZZ[a][b], 0.0) * D[b][j] for b in range(k))
                new[a][j] = D[a][j] * (top / bottom) ** 0.5
        D = new
    return np.array(D)


def test_mu_agrees_with_a_slow_reference_after_20_iterations():
    X, _, _ = signed_problem(3, n_samples=15, n_features=6, k=2)
    D0 = np.random.default_rng(4).uniform(0.2, 1.0, (2, 6))
    estimator = SemiNMF(n_components=2, init="custom", max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, W=D0)
    assert estimator.n_iter_ == 20
    expected = reference_semi_nmf(X.tolist(), D0.tolist(), 20)
    np.testing.assert_allclose(estimator.components_, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_recovers_signed_codes(solver):
    """Semi-NMF is unique only up to D → Q D, Z → Z Q⁻¹ with Q D >= 0 (a positive mix of
    atoms stays nonnegative), so the codes are checked through that map: Z = Z_true Q
    with Q D_fit = D_true, and each recovered atom is mostly one true atom."""
    X, Z_true, D_true = signed_problem(0)
    estimator, Z = _fit(X, n_components=3, solver=solver, max_iter=3000, tol=1e-10)
    Q = np.linalg.lstsq(Z_true, Z, rcond=None)[0]
    np.testing.assert_allclose(Z_true @ Q, Z, atol=0.01 * np.abs(Z).max())
    np.testing.assert_allclose(Q @ estimator.components_, D_true, atol=0.02)
    order = [int(np.argmax(estimator.components_[:, j])) for j in range(3)]
    assert sorted(order) == [0, 1, 2]
    for atom, found in enumerate(order):
        correlation = np.corrcoef(Z[:, found], Z_true[:, atom])[0, 1]
        assert correlation > 0.8  # measured >= 0.84 (mu), >= 0.83 (pgd): atoms mix a little
    assert np.min(Z) < 0  # signed codes
    assert estimator.components_.min() >= 0
    assert estimator.reconstruction_err_ < 0.02 * np.linalg.norm(X)
    np.testing.assert_allclose(estimator.transform(X), Z, atol=1e-6 * np.abs(Z).max())


def test_l1_makes_codes_sparse_and_aliases():
    X, _, _ = signed_problem(5)
    dense, Z_dense = _fit(X, n_components=3, max_iter=300)
    sparse, Z_sparse = _fit(X, n_components=3, l1=2.0, max_iter=300)
    assert np.mean(Z_sparse == 0) > np.mean(Z_dense == 0) + 0.2
    assert np.linalg.norm(sparse.components_, axis=1).max() <= 1 + 1e-12
    assert sparse.loss_names_ == ("frobenius", "l1_sparsity", "total")
    np.testing.assert_allclose(sparse.losses_[-1, 1], 2.0 * np.abs(Z_sparse).sum(), rtol=1e-10)
    np.testing.assert_array_equal(sparse.get_dictionary(), sparse.components_)
    np.testing.assert_allclose(sparse.decode(Z_sparse), Z_sparse @ sparse.components_)
    np.testing.assert_allclose(sparse.encode(X), sparse.transform(X))


def test_with_G_the_dictionary_is_physical_spectra():
    rng = np.random.default_rng(6)
    G = rng.uniform(0.0, 1.0, (12, 4))
    W_true = rng.uniform(0.0, 1.0, (4, 2))
    Z_true = rng.normal(size=(30, 2))
    X = Z_true @ (G @ W_true).T
    for solver in SOLVERS:
        estimator, Z = _fit(X, n_components=2, G=G, solver=solver, max_iter=2000, tol=1e-12)
        assert estimator.W_.shape == (4, 2) and estimator.W_.min() >= 0
        np.testing.assert_allclose(estimator.components_, (G @ estimator.W_).T)
        np.testing.assert_allclose(estimator.H_.T, Z)
        assert estimator.reconstruction_err_ < 1e-3 * np.linalg.norm(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"solver": "als"}, "solver='als' is not valid"),
        ({"l1": -1.0}, "l1=-1.0 is not valid"),
        ({"init": "custom"}, "needs W passed to fit"),
    ],
)
def test_bad_parameters(params, message):
    X, _, _ = signed_problem(0)
    with pytest.raises(ValueError, match=message):
        SemiNMF(**params).fit(X)


@parametrize_with_checks([SemiNMF(n_components=2, random_state=0, max_iter=300, tol=1e-8)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_as_hyperspy_algorithm():
    hs = pytest.importorskip("hyperspy.api")
    X, Z_true, _ = signed_problem(7, n_samples=6 * 5, n_features=12, k=2)
    signal = hs.signals.Signal1D(X.reshape(6, 5, 12))
    estimator = SemiNMF(n_components=2, random_state=0, max_iter=500, tol=1e-10)
    signal.decomposition(algorithm=estimator, print_info=False)
    reference, Z = _fit(X, n_components=2, max_iter=500, tol=1e-10)
    np.testing.assert_allclose(signal.learning_results.factors, reference.components_.T, atol=1e-10)
    np.testing.assert_allclose(signal.learning_results.loadings, Z, atol=1e-10)
    model = signal.get_decomposition_model().data.reshape(-1, 12)
    np.testing.assert_allclose(model, Z @ reference.components_, atol=1e-10)


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_fit_transform_returns_the_codes_of_the_final_dictionary(solver):
    """Even when stopped early, the codes are those of the returned dictionary (least squares
    for "mu"), and the last objective describes them: it is ½‖X − Z D‖² summed directly."""
    X, _, _ = signed_problem(7)
    estimator, Z = _fit(X, n_components=3, solver=solver, max_iter=3, tol=0.0)
    if solver == "mu":
        np.testing.assert_allclose(Z, estimator.transform(X), rtol=1e-10, atol=1e-12)
    direct = objective_terms(X, Z, estimator.components_, 0.0)
    np.testing.assert_allclose(estimator.losses_[-1], direct, rtol=1e-10)
    assert np.all(np.diff(estimator.losses_[:, -1]) <= 0)


def test_the_objective_from_statistics_equals_the_direct_sum():
    X, _, _ = signed_problem(8, noise=0.3)
    rng = np.random.default_rng(9)
    for G in (None, rng.uniform(0.0, 1.0, (X.shape[1], 5))):
        problem = _Problem(X, G)
        W = rng.uniform(0.1, 1.0, (X.shape[1] if G is None else 5, 3))
        Z = rng.normal(size=(X.shape[0], 3))
        stats = (problem.data_times_codes(Z), Z.T @ Z)
        np.testing.assert_allclose(
            problem.objective(Z, W, 0.7, stats), objective_terms(X, Z, problem.dictionary(W), 0.7), rtol=1e-12
        )
