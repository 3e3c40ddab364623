"""The numba backend's Frobenius (β = 2) path: against dense formulas and the reference.

The dense functions below write ½‖X − G W H‖² and the multiplicative updates of
Lee & Seung straight from the formulas (every entry of G W H formed), independently of
both backends; the full fits (G, Laplacian, log sparsity, simplex, fixed entries, masked
channels) are held to the reference backend's general path at 1e-10.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from test_fast_vs_reference import CONTINUUM, COUNTS, G_MATRIX, SHAPE_2D, _fixed

from espm_cli.solver import SmoothNMF, get_backend
from espm_cli.solver import _numba_backend as fast
from espm_cli.solver.backends import backend_for
from espm_cli.solver.missing import find_missing

N_ITER = 20


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(5)
    n_channels, n_elements, k, n_pixels = 19, 5, 3, 42
    G = rng.random((n_channels, n_elements)) + 0.05
    W = rng.random((n_elements, k)) + 0.1
    H = rng.dirichlet(np.ones(k), size=n_pixels).T
    X = rng.poisson(2.0 * G @ W @ H).astype(np.float64)  # channels x pixels, many zeros
    X[:, 4] = 0.0  # an empty pixel
    return X, G, W, H


def dense_frobenius(X, G, W, H):
    return 0.5 * np.sum((X - G @ W @ H) ** 2)


def test_objective_is_half_the_squared_residual(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T, beta=2.0)
    terms, workspace = fast.evaluate(data, G, W, H)
    assert workspace is None
    np.testing.assert_allclose(terms[0], dense_frobenius(X, G, W, H), rtol=1e-12)
    np.testing.assert_array_equal(terms[1:], 0.0)


def test_plain_steps_are_lee_seung_updates(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T, beta=2.0)
    B = G @ W
    H_new = fast.h_step(data, G, W, H)
    np.testing.assert_allclose(H_new, np.maximum(H * (B.T @ X) / (B.T @ B @ H), 1e-10), rtol=1e-12)
    W_new = fast.w_step(data, G, W, H_new)
    expected = W * (G.T @ X @ H_new.T) / (G.T @ G @ W @ H_new @ H_new.T)
    np.testing.assert_allclose(W_new, np.maximum(expected, 1e-10), rtol=1e-12)
    # each half-step lowers the divergence
    before = dense_frobenius(X, G, W, H)
    assert dense_frobenius(X, G, W, H_new) <= before
    assert dense_frobenius(X, G, W_new, H_new) <= dense_frobenius(X, G, W, H_new)


def test_workspaces_give_what_a_fresh_pass_gives(problem):
    X, G, W, H = problem
    data = fast.prepare_counts(X.T, beta=2.0)
    regularisation = dict(shape_2d=(6, 7), lambda_L=0.8, mu=np.full(3, 0.2))
    H_new, to_w = fast.h_step(data, G, W, H, simplex=True, share=True, **regularisation)
    np.testing.assert_array_equal(H_new, fast.h_step(data, G, W, H, simplex=True, **regularisation))
    np.testing.assert_allclose(to_w.values[0], X @ H_new.T, rtol=1e-13)
    W_new, to_evaluate = fast.w_step(data, G, W, H_new, workspace=to_w, share=True)
    np.testing.assert_allclose(W_new, fast.w_step(data, G, W, H_new), rtol=1e-14)
    shared, _ = fast.evaluate(data, G, W_new, H_new, workspace=to_evaluate, **regularisation)
    fresh, _ = fast.evaluate(data, G, W_new, H_new, **regularisation)
    np.testing.assert_allclose(shared, fresh, rtol=1e-13)
    np.testing.assert_allclose(shared[0], dense_frobenius(X, G, W_new, H_new), rtol=1e-12)
    with pytest.raises(ValueError, match="other W and H"):
        fast.evaluate(data, G, W_new.copy(), H_new, workspace=to_evaluate)


@pytest.mark.parametrize("simplex", [False, True])
def test_results_do_not_depend_on_the_thread_count(problem, monkeypatch, simplex):
    X, G, W, H = problem
    results = []
    for n_threads in (1, 2, 3):
        monkeypatch.setattr(fast, "_n_threads", lambda n=n_threads: n)
        data = fast.prepare_counts(X.T, beta=2.0)
        data.block_start = fast.pixel_blocks(data.nonzeros.pixel_start, n_blocks=7)
        H_new, to_w = fast.h_step(
            data, G, W, H, shape_2d=(6, 7), lambda_L=1.0, mu=np.full(3, 0.1), simplex=simplex, share=True
        )
        W_new = fast.w_step(data, G, W, H_new, workspace=to_w)
        results.append((H_new, W_new, fast.objective_terms(data, G, W_new, H_new)))
    for H_new, W_new, terms in results[1:]:
        np.testing.assert_array_equal(H_new, results[0][0])
        np.testing.assert_array_equal(W_new, results[0][1])
        np.testing.assert_array_equal(terms, results[0][2])


def _fit(backend, X, with_G, lambda_L, mu, simplex, fixed, dtype="float64", mask=None):
    params = dict(
        G=G_MATRIX if with_G else None,
        G_continuum=CONTINUUM if with_G else None,
        lambda_L=lambda_L,
        mu=mu,
        simplex=simplex,
        shape_2d=SHAPE_2D,
        max_iter=N_ITER,
        tol=0.0,
        random_state=0,
        dtype=dtype,
        backend=backend,
        beta_loss="frobenius",
        mask=mask,
    )
    if fixed:
        params["fixed_W"], params["fixed_H"] = _fixed(with_G, simplex)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(3, **params).fit(X)


def _assert_same_fit(fast_fit, reference, rtol):
    assert fast_fit.n_iter_ == reference.n_iter_ == N_ITER
    assert fast_fit.loss_names_[0] == "frobenius"
    for name in ("W_", "H_", "losses_"):
        actual, expected = getattr(fast_fit, name), getattr(reference, name)
        difference = float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
        assert difference <= rtol, f"{name}: relative difference {difference:.2e} > {rtol}"


CASES = [
    (True, 1.5, 0.3, "H", True),
    (True, 0.0, [0.0, 0.5, 0.2], "W", True),
    (True, 1.5, 0.0, None, False),
    (False, 0.0, 0.0, None, False),
    (False, 1.5, 0.3, "H", False),
    (False, 0.0, 0.3, "W", True),
]


@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, fixed", CASES)
def test_fit_equals_the_reference(with_G, lambda_L, mu, simplex, fixed):
    args = (with_G, lambda_L, mu, simplex, fixed)
    fast_fit = _fit("numba", COUNTS, *args)
    reference = _fit("reference", COUNTS, *args)
    _assert_same_fit(fast_fit, reference, 1e-10)
    assert np.all(np.diff(fast_fit.losses_[:, -1]) <= 1e-12 * abs(fast_fit.losses_[0, -1]))


def test_fit_with_masked_channels_and_sparse_input_equals_the_reference():
    channels = np.zeros(COUNTS.shape[1], bool)
    channels[[0, 1, 17]] = True
    X = sp.csr_matrix(COUNTS)
    _assert_same_fit(
        _fit("numba", X, True, 1.5, 0.3, "H", False, mask=channels),
        _fit("reference", X, True, 1.5, 0.3, "H", False, mask=channels),
        1e-10,
    )


def test_float32_fit_is_the_float64_fit_to_float32_rounding():
    args = (True, 1.5, 0.3, "H", True)
    fit32 = _fit("numba", COUNTS.astype(np.float32), *args, dtype="float32")
    assert fit32.W_.dtype == fit32.H_.dtype == np.float32
    _assert_same_fit(fit32, _fit("reference", COUNTS, *args), 1e-5)


def test_auto_serves_frobenius_with_numba_unless_pixels_or_entries_are_masked():
    X = COUNTS
    pattern = find_missing(
        X, mask=None, masked_array=None, empty_model_rows=np.zeros(X.shape[1], bool), energies=None
    )
    assert backend_for("auto", 2.0, pattern)[0] is get_backend("numba")
    entries = np.zeros(X.shape, bool)
    entries[3, 5] = True
    pattern = find_missing(
        X, mask=entries, masked_array=None, empty_model_rows=np.zeros(X.shape[1], bool), energies=None
    )
    assert backend_for("auto", 2.0, pattern)[0] is get_backend("reference")
    assert backend_for("auto", 1.5, pattern)[0] is get_backend("reference")


@pytest.mark.parametrize("beta_loss", ["kullback-leibler", "frobenius"])
@pytest.mark.parametrize("extrapolate", [False, True])
def test_fit_loop_chain_of_workspaces_changes_nothing(beta_loss, extrapolate, monkeypatch):
    """The fit loop's evaluate -> h_step -> w_step -> evaluate chain gives the fit of the
    same steps with every workspace dropped (each step then makes its own passes)."""
    from espm_cli.solver import backends

    numba = get_backend("numba")
    monkeypatch.setitem(
        backends._BACKENDS,
        "numba-unshared",
        backends.Backend(
            numba.prepare_counts, numba.h_step, numba.w_step, numba.objective_terms, serves=numba.serves
        ),
    )
    params = dict(
        G=G_MATRIX,
        G_continuum=CONTINUUM,
        lambda_L=1.5,
        mu=0.3,
        simplex="H",
        shape_2d=SHAPE_2D,
        max_iter=15,
        tol=0.0,
        random_state=0,
        beta_loss=beta_loss,
        extrapolate=extrapolate,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        shared = SmoothNMF(3, backend="numba", **params).fit(COUNTS)
        unshared = SmoothNMF(3, backend="numba-unshared", **params).fit(COUNTS)
    for name in ("W_", "H_", "losses_"):
        np.testing.assert_allclose(getattr(shared, name), getattr(unshared, name), rtol=1e-12, atol=0)
