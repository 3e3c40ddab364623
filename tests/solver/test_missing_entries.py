"""Missing entries: NaN, masked arrays, mask=, G's empty rows; transform honours them."""

import logging
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF, get_backend
from espm_cli.solver.initialization import make_feasible
from espm_cli.solver.masked_counts import prepare_masked_counts

SHAPE = (5, 6)
K = 2


def _quiet(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, **kwargs)


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("simplex", [None, "H", "W"])
def test_masked_pixels_fit_equals_fit_without_them(beta, simplex):
    """Without Laplacian, leaving pixels out by a mask = deleting them from X."""
    X, G, continuum = tiny_problem(seed=7, n_channels=12, shape_2d=SHAPE, n_components=K)
    rows = ~continuum if simplex == "W" else None
    kept = np.ones(X.shape[0], bool)
    kept[[0, 7, 8, 21]] = False
    rng = np.random.default_rng(1)
    W0, H0 = make_feasible(
        G,
        rng.uniform(0.2, 1, (G.shape[1], K)),
        rng.uniform(0.2, 1, (K, 30)),
        X[kept].sum(),
        simplex=simplex,
        simplex_rows=rows,
        fixed_W=None,
        fixed_H=None,
        eps=1e-10,
    )
    backend = get_backend("reference")
    masked = prepare_masked_counts(X, np.float64, beta=beta, observed_pixels=kept)
    removed = prepare_masked_counts(X[kept], np.float64, beta=beta)
    regularisation = dict(shape_2d=None, lambda_L=0.0, mu=np.array([0.3, 1.0]), epsilon_reg=0.5)
    W_a, H_a, W_b, H_b = W0, H0, W0, H0[:, kept]
    for _ in range(15):
        H_a = backend.h_step(masked, G, W_a, H_a, simplex=simplex == "H", **regularisation)
        W_a = backend.w_step(masked, G, W_a, H_a, simplex_rows=rows)
        H_b = backend.h_step(removed, G, W_b, H_b, simplex=simplex == "H", **regularisation)
        W_b = backend.w_step(removed, G, W_b, H_b, simplex_rows=rows)
    np.testing.assert_allclose(W_a, W_b, rtol=1e-11)
    np.testing.assert_allclose(H_a[:, kept], H_b, rtol=1e-11)
    F_a = backend.objective_terms(masked, G, W_a, H_a, **regularisation)
    F_b = backend.objective_terms(removed, G, W_b, H_b, **regularisation)
    assert F_a[0] == pytest.approx(F_b[0], rel=1e-11)


def test_pixel_mask_through_the_estimator_and_laplacian_fills_it_in():
    X, G, continuum = tiny_problem(seed=7, n_channels=12, shape_2d=SHAPE, n_components=K)
    mask = np.zeros((30, 1), bool)
    mask[14] = True
    corrupted = X.copy()
    corrupted[14] = 1e6  # whatever is there must not matter
    params = dict(
        G=G,
        G_continuum=continuum,
        shape_2d=SHAPE,
        lambda_L=2.0,
        simplex="H",
        random_state=0,
        max_iter=300,
        tol=1e-10,
        init="random",
    )
    fit = _quiet(SmoothNMF(K, mask=mask, **params), corrupted)
    assert fit.missing_summary_["masked_pixels"] == 1
    clean = _quiet(SmoothNMF(K, **params), X)
    # The masked pixel's abundances are the Laplacian's interpolation of its neighbours.
    H = fit.H_.reshape(K, *SHAPE)
    neighbours = np.mean([H[:, 1, 2], H[:, 3, 2], H[:, 2, 1], H[:, 2, 3]], axis=0)
    np.testing.assert_allclose(H[:, 2, 2], neighbours, atol=1e-3)
    angles = np.degrees(
        np.arccos(np.clip(np.sum(_unit(fit.components_) * _unit(clean.components_), axis=1), -1, 1))
    )
    assert angles.max() < 3.0


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_nan_masked_array_and_mask_are_the_same_missing_entries():
    X, G, continuum = tiny_problem(seed=5, n_channels=12, shape_2d=SHAPE, n_components=K)
    rng = np.random.default_rng(3)
    missing = rng.random(X.shape) < 0.1
    params = dict(G=G, G_continuum=continuum, random_state=0, max_iter=40, tol=0.0, backend="reference")
    with pytest.warns(UserWarning, match=f"X has {missing.sum()} NaN entries"):
        with_nan = SmoothNMF(K, **params).fit(np.where(missing, np.nan, X))
    with_masked_array = _quiet(SmoothNMF(K, **params), np.ma.masked_array(X, mask=missing))
    with_mask = _quiet(SmoothNMF(K, mask=missing, **params), X)
    plain = _quiet(SmoothNMF(K, **params), X)
    for other in (with_masked_array, with_mask):
        np.testing.assert_allclose(other.W_, with_nan.W_, rtol=1e-12)
        np.testing.assert_allclose(other.H_, with_nan.H_, rtol=1e-12)
    # The mask changes the fit (it is not silently dropped).
    assert np.abs(with_masked_array.W_ - plain.W_).max() > 1e-3 * np.abs(plain.W_).max()
    assert with_mask.missing_summary_["masked_entries"] == missing.sum()


def test_masked_entries_ignore_corrupted_values():
    X, G, continuum = tiny_problem(seed=5, n_channels=12, shape_2d=SHAPE, n_components=K)
    bad = np.zeros(X.shape, bool)
    bad[np.arange(0, 30, 3), np.arange(10) % 12] = True
    corrupted = np.where(bad, 5000.0, X)
    params = dict(G=G, G_continuum=continuum, random_state=0, max_iter=200, tol=1e-9, simplex="H")
    clean = _quiet(SmoothNMF(K, **params), X)
    masked = _quiet(SmoothNMF(K, mask=bad, **params), corrupted)
    unmasked = _quiet(SmoothNMF(K, **params), corrupted)
    error_masked = np.abs(masked.H_ - clean.H_).max()
    assert error_masked < 0.5 * np.abs(unmasked.H_ - clean.H_).max()
    # transform honours NaN as missing too
    transformed = masked.transform(np.where(bad, np.nan, corrupted))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = masked.transform(X)
    assert np.abs(transformed - direct).max() < 0.1
    assert np.abs(masked.transform(corrupted) - direct).max() < 0.1  # mask= of the fit applies


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_channel_mask_and_empty_rows_of_G_leave_channels_out(backend, caplog):
    """Masked channels and zero rows of G: the fit of X and G without those channels."""
    X, G, continuum = tiny_problem(seed=9, n_channels=16, shape_2d=SHAPE, n_components=K)
    G = G.copy()
    G[[0, 1]] = 0.0  # counts there, but no model: left out (used to be an error)
    channel_mask = np.zeros(16, bool)
    channel_mask[[9, 10]] = True
    kept = ~channel_mask
    kept[[0, 1]] = False
    params = dict(
        G_continuum=continuum,
        random_state=0,
        max_iter=30,
        tol=0.0,
        backend=backend,
        simplex="H",
        lambda_L=1.0,
        shape_2d=SHAPE,
    )
    with caplog.at_level(logging.INFO, logger="espm_cli.solver.missing"):
        fit = _quiet(SmoothNMF(K, G=G, mask=channel_mask, **params), X)
    assert "G is zero in 2 channels (channels 0-1)" in caplog.text
    reduced = _quiet(SmoothNMF(K, G=G[kept], **params), X[:, kept])
    np.testing.assert_allclose(fit.W_, reduced.W_, rtol=1e-10)
    np.testing.assert_allclose(fit.H_, reduced.H_, rtol=1e-10)
    assert fit.components_.shape == (K, 16)
    np.testing.assert_array_equal(fit.kept_channels_, kept)
    np.testing.assert_allclose(fit.transform(X), reduced.transform(X[:, kept]), rtol=1e-8)


def test_masked_channels_holding_all_lines_of_an_element_is_an_error():
    X, G, continuum = tiny_problem(seed=9, n_channels=16, shape_2d=SHAPE, n_components=K)
    G = G.copy()
    G[5:, 0] = 0.0
    mask = np.zeros(16, bool)
    mask[:5] = True
    with pytest.raises(ValueError, match="G column 0 is zero on every channel left in the fit"):
        SmoothNMF(K, G=G, mask=mask).fit(X)


def test_sparse_input_with_masked_entries_matches_dense():
    X, G, continuum = tiny_problem(seed=5, n_channels=12, shape_2d=SHAPE, n_components=K)
    X = np.where(np.random.default_rng(0).random(X.shape) < 0.4, 0.0, X)
    missing = np.random.default_rng(1).random(X.shape) < 0.1
    params = dict(
        G=G,
        G_continuum=continuum,
        random_state=0,
        max_iter=30,
        tol=0.0,
        mask=missing,
        beta_loss=1.5,
        init="random",
    )
    dense = _quiet(SmoothNMF(K, **params), X)
    sparse = _quiet(SmoothNMF(K, **params), sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.W_, dense.W_, rtol=1e-10)
    np.testing.assert_allclose(sparse.H_, dense.H_, rtol=1e-10)


def test_channel_mask_without_G_fits_the_other_channels():
    X, _, _ = tiny_problem(seed=9, n_channels=16, shape_2d=SHAPE, n_components=K, with_G=False)
    mask = np.zeros(16, bool)
    mask[[3, 4]] = True
    kept = ~mask
    params = dict(random_state=0, max_iter=30, tol=0.0, init="random")
    fit = _quiet(SmoothNMF(K, mask=mask, **params), X)
    reduced = _quiet(SmoothNMF(K, **params), X[:, kept])
    np.testing.assert_allclose(fit.W_[kept], reduced.W_, rtol=1e-10)
    assert np.all(fit.W_[mask] == 0) and fit.components_.shape == (K, 16)
    np.testing.assert_allclose(fit.transform(X), reduced.transform(X[:, kept]), rtol=1e-8)


def test_physics_model_with_a_zero_energy_peak(caplog):
    """A real-file situation: counts below the model's first line (the zero-energy peak).

    G is zero there; those channels are left out with one log line naming their energies,
    and the fit equals the fit of the other channels.
    """
    from espm_cli.simulate.synthetic import SimulationSettings, _edx_model

    model = _edx_model(
        SimulationSettings(n_channels=200, energy_scale_keV=0.05, energy_offset_keV=-0.2), ["Fe", "Pt", "O"]
    )
    empty = ~model.G.any(axis=1)
    assert empty.any()
    rng = np.random.default_rng(0)
    W = rng.uniform(0.2, 1.0, (model.G.shape[1], 2))
    H = rng.dirichlet(np.ones(2), 36).T
    X = rng.poisson(20 * model.G @ W @ H).T.astype(float)
    X[:, empty] = rng.poisson(50.0, (36, int(empty.sum())))  # the zero-energy peak
    params = dict(random_state=0, max_iter=20, tol=0.0, simplex="H")
    with caplog.at_level(logging.INFO, logger="espm_cli.solver.missing"):
        fit = _quiet(SmoothNMF(2, G=model, **params), X)
    assert f"G is zero in {int(empty.sum())} channels" in caplog.text and "keV" in caplog.text
    reduced = _quiet(
        SmoothNMF(2, G=model.G[~empty], G_continuum=model.continuum_mask, **params), X[:, ~empty]
    )
    np.testing.assert_allclose(fit.W_, reduced.W_, rtol=1e-10)
    assert fit.components_.shape == (2, 200)
