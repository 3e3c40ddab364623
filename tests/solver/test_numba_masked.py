"""The numba backend's KL steps with masked pixels and entries, held to the reference."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from solver_helpers import feasible_start, tiny_problem

from espm_cli.solver import SmoothNMF, get_backend
from espm_cli.solver.backends import backend_for
from espm_cli.solver.missing import find_missing

pytest.importorskip("numba")

SHAPE = (6, 8)


def _masks(n_pixels, n_channels, seed):
    rng = np.random.default_rng(seed)
    entries = rng.random((n_pixels, n_channels)) < 0.3
    pixels = np.zeros(n_pixels, bool)
    pixels[[2, 9, 30]] = True
    return entries, pixels


def _prepared(X, entries, pixels):
    data = {}
    for name in ("numba", "reference"):
        backend = get_backend(name)
        data[name] = backend.prepare_counts(
            X, np.float64, beta=1.0, observed_pixels=None if pixels is None else ~pixels, missing=entries
        )
    return data


@pytest.mark.parametrize("n_components", [2, 5])  # below and above the kernels' register width
@pytest.mark.parametrize("masks", ["entries", "pixels", "both"])
@pytest.mark.parametrize("simplex", [None, "H", "W"])
def test_masked_kl_steps_equal_the_reference(n_components, masks, simplex):
    X, G, continuum = tiny_problem(seed=3, n_channels=15, shape_2d=SHAPE, n_components=n_components)
    entries, pixels = _masks(*X.shape, seed=4)
    entries = sp.csr_array(entries) if masks != "pixels" else None
    pixels = pixels if masks != "entries" else None
    data = _prepared(X, entries, pixels)
    W, H = feasible_start(X, G, n_components, seed=1, simplex=simplex, continuum=continuum)
    rows = ~continuum if simplex == "W" else None
    settings = dict(shape_2d=SHAPE, lambda_L=0.7, mu=np.linspace(0.1, 0.4, n_components), epsilon_reg=0.5)
    fixed = np.full(H.shape, -1.0)
    fixed[0, 5] = 0.25 if simplex == "H" else 2.0
    states = {}
    for name in ("numba", "reference"):
        backend = get_backend(name)
        W_i, H_i = W, H
        losses = []
        for _ in range(20):
            H_i = backend.h_step(data[name], G, W_i, H_i, simplex=simplex == "H", fixed=fixed, **settings)
            W_i = backend.w_step(data[name], G, W_i, H_i, simplex_rows=rows)
            losses.append(backend.objective_terms(data[name], G, W_i, H_i, **settings).sum())
        states[name] = (W_i, H_i, np.array(losses))
    W_n, H_n, F_n = states["numba"]
    W_r, H_r, F_r = states["reference"]
    np.testing.assert_allclose(W_n, W_r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H_n, H_r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F_n, F_r, rtol=1e-11)
    assert np.all(np.diff(F_n) <= 1e-12 * abs(F_n[0]))


def test_numba_workspaces_give_the_steps_without_them():
    """The shared chain (evaluate → h_step → w_step) equals each step on its own."""
    X, G, _ = tiny_problem(seed=5, n_channels=15, shape_2d=SHAPE, n_components=3)
    entries, pixels = _masks(*X.shape, seed=6)
    backend = get_backend("numba")
    data = backend.prepare_counts(
        X, np.float64, beta=1.0, observed_pixels=~pixels, missing=sp.csr_array(entries)
    )
    W, H = feasible_start(X, G, 3, seed=2)
    terms, workspace = backend.evaluate(data, G, W, H)
    H_shared, workspace = backend.h_step(data, G, W, H, workspace=workspace, share=True)
    W_shared = backend.w_step(data, G, W, H_shared, workspace=workspace)
    H_alone = backend.h_step(data, G, W, H)
    W_alone = backend.w_step(data, G, W, H_alone)
    np.testing.assert_allclose(terms, backend.objective_terms(data, G, W, H), rtol=1e-14)
    np.testing.assert_allclose(H_shared, H_alone, rtol=1e-13)
    np.testing.assert_allclose(W_shared, W_alone, rtol=1e-13)


def test_masked_entries_leave_the_counts_out():
    """Counts at missing entries do not change the numba fit; they change an unmasked one."""
    X, G, _ = tiny_problem(seed=8, n_channels=15, shape_2d=SHAPE, n_components=2)
    entries, _ = _masks(*X.shape, seed=9)
    corrupted = X.copy()
    corrupted[entries] = 1000.0
    fits = []
    for counts in (X, corrupted):
        estimator = SmoothNMF(2, G=G, mask=entries, backend="numba", max_iter=25, tol=0.0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(counts)
        fits.append(estimator)
    np.testing.assert_allclose(fits[0].W_, fits[1].W_, rtol=1e-12)
    np.testing.assert_allclose(fits[0].losses_, fits[1].losses_, rtol=1e-12)


def test_auto_picks_numba_for_masked_kl_and_not_for_masked_frobenius():
    X, _, _ = tiny_problem(seed=1, n_channels=15, shape_2d=SHAPE)
    entries, _ = _masks(*X.shape, seed=2)
    pattern = find_missing(X, mask=entries)
    backend_kl, _ = backend_for("auto", 1.0, pattern)
    backend_l2, _ = backend_for("auto", 2.0, pattern)
    assert backend_kl is get_backend("numba")
    assert backend_l2 is get_backend("reference")
