"""exspy's EDS_TEM decomposition defaults (Poisson normalisation, vacuum mask) break a
KL fit: the estimator must say so clearly instead of returning a wrong answer."""

import warnings

import numpy as np
import pytest
from hyperspy_ext_helpers import REALDATA, eds_signal

import espm_cli
from espm_cli.solver import SmoothNMF

SHAPE_2D = (6, 8)


def sparse_tem_signal(lazy):
    signal = eds_signal(shape=(*SHAPE_2D, 60), signal_type="EDS_TEM", rate=0.15, seed=4)
    signal.change_dtype("float64")
    return signal.as_lazy() if lazy else signal


@pytest.mark.parametrize("lazy", [False, True])
def test_poisson_normalisation_warns(lazy):
    signal = sparse_tem_signal(lazy)
    estimator = SmoothNMF(2, random_state=0, max_iter=5)
    with pytest.warns(UserWarning, match="normalize_poissonian_noise=False"):
        # exspy's default normalize_poissonian_noise=True
        signal.decomposition(algorithm=estimator, navigation_mask=None, print_info=False)


@pytest.mark.parametrize("lazy", [False, True])
def test_counts_do_not_warn(lazy):
    signal = sparse_tem_signal(lazy)
    estimator = SmoothNMF(2, random_state=0, max_iter=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal.decomposition(
            algorithm=estimator, navigation_mask=None, normalize_poissonian_noise=False, print_info=False
        )
    assert not [w for w in caught if "non-integer" in str(w.message)]


@pytest.mark.parametrize("lazy", [False, True])
def test_vacuum_mask_with_laplacian_is_refused(lazy):
    signal = sparse_tem_signal(lazy)
    estimator = SmoothNMF(2, shape_2d=SHAPE_2D, lambda_L=1.0, random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="navigation_mask=None") as raised:
            # exspy's default navigation_mask=1.0: the vacuum mask drops pixels
            signal.decomposition(algorithm=estimator, normalize_poissonian_noise=False, print_info=False)
    assert f"holds {SHAPE_2D[0] * SHAPE_2D[1]} pixels" in str(raised.value)


def test_real_sparse_tem_file_defaults_fail_loudly_and_decompose_phases_works():
    path = REALDATA / "test_TEM.bcf"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    signal = espm_cli.load(path).inav[:32, :24]
    signal.set_signal_type("EDS_TEM")
    kept = ~signal.vacuum_mask().data
    assert kept.sum() < 0.2 * kept.size  # exspy's vacuum mask drops most pixels
    float_signal = signal.deepcopy()
    float_signal.change_dtype("float64")
    estimator = SmoothNMF(2, shape_2d=(24, 32), lambda_L=1.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="mask"):  # hyperspy's or ours
            float_signal.decomposition(algorithm=estimator, print_info=False)

    signal.set_signal_type("EDS_espm_cli")
    results = signal.decompose_phases(2, lambda_L=1.0, random_state=0, max_iter=5)
    assert results.maps.shape == (2, 24, 32)
    assert signal.learning_results.navigation_mask is None
    assert np.all(np.isfinite(signal.learning_results.loadings))
