"""normalize: the weights mean the same at any dose; results come back in counts."""

import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from solver_helpers import tiny_problem

from espm_cli.simulate.synthetic import SimulationSettings, simulate
from espm_cli.solver import SmoothNMF
from espm_cli.solver.initialization import make_feasible

SHAPE = (5, 6)


def _quiet(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, **kwargs)


@pytest.mark.parametrize("simplex", [None, "H", "W"])
def test_results_come_back_in_counts(simplex):
    """Unit of the counts: X and 100 X give the same maps, W (or H) scaled by 100."""
    X, G, continuum = tiny_problem(seed=2, n_channels=14, shape_2d=SHAPE, n_components=2)
    params = dict(
        G=G,
        G_continuum=continuum,
        shape_2d=SHAPE,
        lambda_L=1.0,
        mu=0.05,
        epsilon_reg=0.01,
        simplex=simplex,
        normalize=True,
        random_state=0,
        max_iter=50,
        tol=0.0,
    )
    small = _quiet(SmoothNMF(2, **params), X)
    large = _quiet(SmoothNMF(2, **params), 100 * X)
    assert small.data_scale_ == pytest.approx(100 * large.data_scale_)
    # The factor that carries the unit: W, or H under simplex="W" (W's element rows sum to 1).
    spectra_unit, maps_unit = (1, 100) if simplex == "W" else (100, 1)
    for name, unit in (("components_", spectra_unit), ("H_", maps_unit)):
        expected = unit * getattr(small, name)
        np.testing.assert_allclose(
            getattr(large, name), expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max()
        )
    np.testing.assert_allclose(small.losses_, large.losses_, rtol=1e-8, atol=1e-10)
    assert large.reconstruction_err_ == pytest.approx(100 * small.reconstruction_err_, rel=1e-8)
    # transform gives back the training abundances' scale as well
    expected = maps_unit * small.transform(X)
    np.testing.assert_allclose(large.transform(100 * X), expected, rtol=1e-6, atol=1e-10 * expected.max())


@pytest.mark.parametrize("beta", [1.0, 2.0, 1.5])
def test_without_regularisers_normalize_changes_nothing(beta):
    """The MM steps are equivariant to the scale: only the weights' meaning changes."""
    X, G, continuum = tiny_problem(seed=2, n_channels=14, shape_2d=SHAPE, n_components=2)
    rng = np.random.default_rng(0)
    W0, H0 = make_feasible(
        G,
        rng.uniform(0.2, 1, (G.shape[1], 2)),
        rng.uniform(0.2, 1, (2, 30)),
        X.sum(),
        simplex=None,
        simplex_rows=None,
        fixed_W=None,
        fixed_H=None,
        eps=1e-10,
    )
    params = dict(G=G, beta_loss=beta, init="custom", max_iter=30, tol=0.0)
    plain = _quiet(SmoothNMF(2, **params), X, W=W0, H=H0)
    scaled = _quiet(SmoothNMF(2, normalize=True, **params), X, W=W0, H=H0)
    np.testing.assert_allclose(scaled.W_, plain.W_, rtol=1e-9)
    np.testing.assert_allclose(scaled.H_, plain.H_, rtol=1e-9)
    assert scaled.reconstruction_err_ == pytest.approx(plain.reconstruction_err_, rel=1e-9)


def _matched_maps(estimator, truth):
    k = truth.shape[0]
    correlation = np.corrcoef(np.vstack([estimator.H_, truth]))[:k, k:]
    rows, cols = linear_sum_assignment(-correlation)
    return estimator.H_[rows[np.argsort(cols)]]


def test_same_weights_same_maps_at_dose_30_and_3000():
    """One specimen (espm_cli.simulate), doses 30 and 3000, the same weights.

    With normalize the maps at the two doses differ by less than two noise draws at dose
    30 differ from each other: the weights act the same. Without it, the same weights
    (those that equal the normalised ones at dose 30) are 100x weaker at dose 3000 and the
    maps differ by more than the noise.
    """
    simulation = simulate(
        SimulationSettings(
            size=(24, 24),
            dose=1.0,
            n_channels=400,
            energy_scale_keV=0.025,
            seed=0,
            shapes=("particles", "layer"),
        )
    )
    G, W, maps = simulation.truth.G, simulation.truth.W, simulation.truth.maps
    k = W.shape[1]
    truth = maps.reshape(k, -1)
    expected = G @ W @ truth

    def fitted_maps(dose, seed, normalize, lambda_L, mu):
        X = np.random.default_rng(seed).poisson(dose * expected).T
        estimator = SmoothNMF(
            k,
            G=G,
            shape_2d=(24, 24),
            lambda_L=lambda_L,
            mu=mu,
            epsilon_reg=0.01,
            simplex="H",
            normalize=normalize,
            max_iter=400,
            tol=1e-7,
            random_state=0,
            init="spa",
            n_init=1,
        )  # the weights, not the start
        return _matched_maps(_quiet(estimator, X), truth)

    # normalize: X scaled to k counts per pixel; at dose 30 that is a factor 10 (k = 3).
    for normalize, lambda_L, mu in ((True, 2.0, 0.004), (False, 20.0, 0.04)):
        first, second = (
            fitted_maps(30, 1, normalize, lambda_L, mu),
            fitted_maps(30, 2, normalize, lambda_L, mu),
        )
        high_dose = fitted_maps(3000, 3, normalize, lambda_L, mu)
        noise = np.abs(first - second).mean()
        dose_change = max(np.abs(first - high_dose).mean(), np.abs(second - high_dose).mean())
        if normalize:
            assert dose_change < 0.8 * noise, (dose_change, noise)
        else:
            assert dose_change > 1.1 * noise, (dose_change, noise)
