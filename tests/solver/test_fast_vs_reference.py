"""The fast (numba) backend gives the reference backend's fit: W, H and F after 20 iterations.

float64: equal to 1e-8 relative. float32: the fast backend keeps W and H in float32 between
steps but computes every step in float64, so it is compared with the float64 reference at
a tolerance that covers float32 rounding of W and H after each step (1e-5), and with the
float32 reference, which also rounds inside each step, at 1e-4.
"""

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from espm_cli.solver import SmoothNMF, get_backend

SHAPE_2D = (6, 7)
N_CHANNELS = 40
N_ITER = 20


def _peaks_matrix():
    channels = np.arange(N_CHANNELS)
    peaks = [np.exp(-0.5 * ((channels - centre) / 1.5) ** 2) for centre in (6, 15, 24, 33)]
    ramp = channels / N_CHANNELS
    continuum = [np.exp(-3 * ramp) * (0.2 + ramp), 0.3 + 0.7 * np.sqrt(ramp)]
    return np.column_stack(peaks + continuum), np.array([False] * 4 + [True] * 2)


def _sparse_counts(seed=0, k=3):
    """Poisson counts (n_pixels, n_channels), about half of them zero."""
    rng = np.random.default_rng(seed)
    G, _ = _peaks_matrix()
    n_pixels = SHAPE_2D[0] * SHAPE_2D[1]
    W = rng.uniform(0.1, 1.0, (G.shape[1], k))
    H = rng.dirichlet(np.ones(k) * 0.7, n_pixels).T
    return rng.poisson(0.6 * G @ W @ H).T.astype(np.float64)


COUNTS = _sparse_counts()
G_MATRIX, CONTINUUM = _peaks_matrix()


def _fixed(with_G, simplex, k=3):
    m = G_MATRIX.shape[1] if with_G else N_CHANNELS
    fixed_W = -np.ones((m, k))
    fixed_H = -np.ones((k, COUNTS.shape[0]))
    fixed_W[1, 2] = 0.2 if simplex == "W" else 0.5
    fixed_H[0, ::5] = 0.3
    return fixed_W, fixed_H


def _fit(backend, X, dtype, with_G, lambda_L, mu, simplex, fixed):
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
    )
    if fixed:
        params["fixed_W"], params["fixed_H"] = _fixed(with_G, simplex)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(3, **params).fit(X)


def _relative_difference(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def _assert_same_fit(fast, reference, rtol):
    assert fast.n_iter_ == reference.n_iter_ == N_ITER
    for name in ("W_", "H_", "losses_"):
        difference = _relative_difference(getattr(fast, name), getattr(reference, name))
        assert difference <= rtol, f"{name}: relative difference {difference:.2e} > {rtol}"


MU_VALUES = {"none": 0.0, "scalar": 0.3, "per_component": [0.0, 0.5, 0.2]}
GRID = list(itertools.product([True, False], [0.0, 1.5], list(MU_VALUES), [None, "H", "W"], [False, True]))


@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, fixed", GRID)
def test_fast_equals_reference_dense_float64(with_G, lambda_L, mu, simplex, fixed):
    args = (with_G, lambda_L, MU_VALUES[mu], simplex, fixed)
    fast = _fit("numba", COUNTS, "float64", *args)
    reference = _fit("reference", COUNTS, "float64", *args)
    _assert_same_fit(fast, reference, 1e-8)


SUBSET = [
    (True, 1.5, "scalar", "H", True),
    (False, 0.0, "none", None, False),
    (True, 0.0, "per_component", "W", True),
    (False, 1.5, "scalar", "W", False),
]


@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, fixed", SUBSET)
@pytest.mark.parametrize("fmt", ["csr", "csc", "integer_dense"])
def test_fast_equals_reference_other_inputs(with_G, lambda_L, mu, simplex, fixed, fmt):
    X = COUNTS.astype(np.int32) if fmt == "integer_dense" else sp.csr_matrix(COUNTS).asformat(fmt)
    args = (with_G, lambda_L, MU_VALUES[mu], simplex, fixed)
    fast = _fit("numba", X, "float64", *args)
    reference = _fit("reference", X, "float64", *args)
    _assert_same_fit(fast, reference, 1e-8)


@pytest.mark.parametrize("with_G, lambda_L, mu, simplex, fixed", SUBSET)
@pytest.mark.parametrize("sparse_input", [False, True])
def test_fast_float32(with_G, lambda_L, mu, simplex, fixed, sparse_input):
    X = COUNTS.astype(np.float32)
    X = sp.csr_matrix(X) if sparse_input else X
    args = (with_G, lambda_L, MU_VALUES[mu], simplex, fixed)
    fast = _fit("numba", X, "float32", *args)
    assert fast.W_.dtype == fast.H_.dtype == np.float32
    _assert_same_fit(fast, _fit("reference", X, "float64", *args), 1e-5)
    _assert_same_fit(fast, _fit("reference", X, "float32", *args), 1e-4)


def test_auto_picks_the_fast_backend():
    assert get_backend("auto") is get_backend("numba")


def test_transform_matches_reference():
    fast = _fit("numba", COUNTS, "float64", True, 1.5, 0.3, "H", False)
    reference = _fit("reference", COUNTS, "float64", True, 1.5, 0.3, "H", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_allclose(
            fast.transform(COUNTS[:10]), reference.transform(COUNTS[:10]), rtol=1e-8, atol=1e-12
        )


def test_stopping_rule_gives_the_same_iteration_count():
    params = dict(
        G=G_MATRIX,
        G_continuum=CONTINUUM,
        lambda_L=0.5,
        simplex="H",
        shape_2d=SHAPE_2D,
        max_iter=2000,
        tol=1e-5,
        random_state=0,
    )
    fast = SmoothNMF(3, backend="numba", **params).fit(COUNTS)
    reference = SmoothNMF(3, backend="reference", **params).fit(COUNTS)
    assert fast.converged_ and reference.converged_
    assert fast.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fast.losses_, reference.losses_, rtol=1e-9)
