"""Error bars by parametric bootstrap: they shrink as 1/sqrt(dose), NaN where undetected."""

import warnings

import numpy as np
import pytest

from espm_cli.analysis import describe_phases, make_estimator
from espm_cli.analysis.uncertainty import bootstrap_uncertainty, format_value, poisson_draw
from espm_cli.simulate import SimulationSettings, simulate
from espm_cli.simulate.synthetic import _edx_model

SMALL = dict(size=(16, 16), n_channels=512, energy_scale_keV=0.02)


def fit_with_error_bars(dose, seed=0):
    settings = SimulationSettings(seed=seed, dose=dose, **SMALL)
    simulation = simulate(settings)
    model = _edx_model(settings, simulation.elements)
    X = simulation.counts.reshape(256, -1)
    estimator = make_estimator(3, model, (16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    description = describe_phases(estimator.G_, estimator.W_, estimator.H_, model)
    uncertainty = bootstrap_uncertainty(
        estimator, model, description.detected, n_draws=8, n_iterations=15, seed=seed
    )
    return description, uncertainty, estimator.H_


def test_error_bars_shrink_as_one_over_sqrt_dose():
    low, low_sd, low_H = fit_with_error_bars(100.0)
    high, high_sd, high_H = fit_with_error_bars(1600.0)
    both = np.isfinite(low.composition) & np.isfinite(high.composition)
    assert both.sum() >= 5
    ratio = np.median(low_sd.composition_sd[both] / high_sd.composition_sd[both])
    assert 2.5 < ratio < 6.5, ratio  # sqrt(16) = 4, with 8 draws of noise on each σ
    # maps: where a phase is present (at the bound ε of an absent phase the spread is not
    # Gaussian, and shrinks faster)
    present = (low_H > 0.3) & (high_H > 0.3)
    map_ratio = np.median(low_sd.maps_sd[present] / high_sd.maps_sd[present])
    assert 2.0 < map_ratio < 8.0, map_ratio
    # shapes, and no error bar where no composition
    assert low_sd.maps_sd.shape == (3, 256)
    assert np.array_equal(np.isnan(low_sd.composition_sd), np.isnan(low.composition))


def test_poisson_draws_have_the_model_as_mean():
    rng = np.random.default_rng(0)
    G, W, H = rng.random((20, 3)), rng.random((3, 2)), rng.random((2, 30))
    draws = np.mean([poisson_draw(G, W, H, rng).toarray() for _ in range(400)], axis=0)
    np.testing.assert_allclose(draws, (G @ W @ H).T, atol=0.25)
    assert draws.shape == (30, 20)


def test_bootstrap_needs_two_draws():
    with pytest.raises(ValueError, match="at least 2 draws"):
        bootstrap_uncertainty(None, n_draws=1)


@pytest.mark.parametrize(
    "value, sd, text",
    [
        (50.12, 0.61, "50.1 ± 0.6"),
        (8.089, 0.035, "8.09 ± 0.04"),
        (float("nan"), 0.1, "-"),
        (3.0, None, "3.0"),
    ],
)
def test_format(value, sd, text):
    assert format_value(value, sd) == text


def test_the_error_bar_is_the_rms_deviation_from_the_fit():
    """The bar counts the draws' spread and the shift of their mean away from the fit (the
    bootstrap's bias estimate): sqrt(spread² + shift²), not the spread alone."""
    from espm_cli.analysis.uncertainty import rms_deviation

    rng = np.random.default_rng(0)
    fitted = np.array([[10.0, np.nan], [5.0, 1.0]])
    draws = fitted[None] + 0.3 + rng.normal(0.0, 0.2, (400, 2, 2))  # shifted by 0.3
    bar = rms_deviation(draws, fitted)
    spread = np.std(draws, axis=0)
    shift = draws.mean(axis=0) - fitted
    np.testing.assert_allclose(bar, np.sqrt(spread**2 + shift**2), rtol=1e-12)
    assert np.isnan(bar[0, 1])
    assert np.all(bar[np.isfinite(bar)] > 1.3 * spread[np.isfinite(bar)])  # the shift counts
