"""hyperspy's lazy decomposition streams its blocks through MiniBatchSmoothNMF.partial_fit."""

import numpy as np
import pytest
from test_hyperspy_decomposition import N_CHANNELS, SHAPE_2D, simulated_signal

from espm_cli.solver import MiniBatchSmoothNMF, SmoothNMF

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_lazy_decomposition_streams_blocks_through_partial_fit(monkeypatch):
    signal, model = simulated_signal("EDS_TEM")
    lazy = signal.as_lazy()
    lazy.data = lazy.data.rechunk((2, SHAPE_2D[1], N_CHANNELS))  # 5 blocks of 2 whole rows
    seen = []
    partial_fit = MiniBatchSmoothNMF.partial_fit

    def recording(self, X, *args, **kwargs):
        seen.append(X.shape[0])
        return partial_fit(self, X, *args, **kwargs)

    monkeypatch.setattr(MiniBatchSmoothNMF, "partial_fit", recording)
    estimator = MiniBatchSmoothNMF(3, G=model, shape_2d=SHAPE_2D, lambda_L=1.0, random_state=0)
    lazy.decomposition(
        algorithm=estimator, print_info=False, normalize_poissonian_noise=False, navigation_mask=None
    )
    assert sum(seen) == SHAPE_2D[0] * SHAPE_2D[1] and max(seen) < sum(seen)
    assert estimator.n_steps_ == len(seen)
    np.testing.assert_allclose(lazy.learning_results.factors, estimator.components_.T)


def test_smoothnmf_on_a_lazy_signal_is_one_exact_fit(monkeypatch):
    """SmoothNMF has no partial_fit: hyperspy hands it every pixel at once (the exact fit)."""
    signal, model = simulated_signal("EDS_TEM")
    lazy = signal.as_lazy()
    lazy.data = lazy.data.rechunk((2, SHAPE_2D[1], N_CHANNELS))
    calls = []
    fit_transform = SmoothNMF.fit_transform

    def recording(self, X, *args, **kwargs):
        calls.append(X.shape[0])
        return fit_transform(self, X, *args, **kwargs)

    monkeypatch.setattr(SmoothNMF, "fit_transform", recording)
    estimator = SmoothNMF(3, G=model, shape_2d=SHAPE_2D, lambda_L=1.0, random_state=0, max_iter=10)
    lazy.decomposition(
        algorithm=estimator, print_info=False, normalize_poissonian_noise=False, navigation_mask=None
    )
    assert calls[0] == SHAPE_2D[0] * SHAPE_2D[1]
