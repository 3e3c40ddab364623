"""SmoothNMF as hyperspy's ``algorithm=`` and the signal's ``decompose_phases``.

The hyperspy paths must give the same spectra and maps as the estimator called
directly on the same (pixels, channels) matrix with the same seed.
"""

import matplotlib
import numpy as np
import pytest
from hyperspy_ext_helpers import REALDATA, eds_signal

import espm_cli
from espm_cli.solver import SmoothNMF

matplotlib.use("Agg")

SHAPE_2D = (10, 12)
N_CHANNELS = 150
SOLVER_OPTIONS = dict(lambda_L=1.0, random_state=0, max_iter=40, tol=1e-6)


def simulated_signal(signal_type="EDS_TEM", seed=1):
    """Poisson counts drawn from G W H with smooth maps of three phases."""
    import hyperspy.api as hs

    template = eds_signal(shape=(*SHAPE_2D, N_CHANNELS), signal_type=signal_type, elements=("Fe", "Pt", "O"))
    template.set_signal_type("EDS_espm_cli")
    model = template.build_G()
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.5, 2.0, size=(model.G.shape[1], 3))
    y, x = np.mgrid[0 : SHAPE_2D[0], 0 : SHAPE_2D[1]]
    maps = (
        np.stack([np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 12.0) for cx, cy in ((2, 2), (9, 3), (6, 8))])
        + 0.05
    )
    rates = (model.G @ W @ maps.reshape(3, -1)).T * 3.0
    counts = rng.poisson(rates).reshape(*SHAPE_2D, N_CHANNELS)
    signal = hs.signals.Signal1D(counts.astype(np.float64))
    signal.axes_manager.signal_axes[0].update_from(
        template.axes_manager.signal_axes[0], ("offset", "scale", "units", "name")
    )
    signal.metadata.set_item("Sample.elements", ["Fe", "Pt", "O"])
    if signal_type:
        signal.set_signal_type(signal_type)
        microscope = "SEM" if "SEM" in signal_type else "TEM"
        signal.metadata.set_item(f"Acquisition_instrument.{microscope}.beam_energy", 200.0)
    return signal, model


def direct_fit(signal, model, **options):
    X = np.asarray(signal.data, dtype=np.float64).reshape(-1, N_CHANNELS)
    estimator = SmoothNMF(3, G=model, shape_2d=SHAPE_2D, **{**SOLVER_OPTIONS, **options})
    loadings = estimator.fit_transform(X)
    return estimator, loadings, X


@pytest.mark.parametrize("signal_type", ["", "EDS_SEM", "EDS_TEM"])
def test_algorithm_eager_matches_direct_estimator(signal_type):
    signal, model = simulated_signal(signal_type)
    reference, reference_loadings, _ = direct_fit(signal, model)
    estimator = SmoothNMF(3, G=model, shape_2d=SHAPE_2D, **SOLVER_OPTIONS)
    # exspy's EDS_TEM turns on Poisson normalisation and a vacuum mask: turn them off
    flags = dict(normalize_poissonian_noise=False, navigation_mask=None) if signal_type == "EDS_TEM" else {}
    signal.decomposition(algorithm=estimator, print_info=False, **flags)
    np.testing.assert_allclose(signal.learning_results.factors, reference.components_.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(signal.learning_results.loadings, reference_loadings, rtol=0, atol=1e-8)
    maps = signal.get_decomposition_loadings()
    assert maps.axes_manager.signal_shape == SHAPE_2D[::-1]
    spectra = signal.get_decomposition_factors()
    assert spectra.axes_manager.signal_shape == (N_CHANNELS,)
    model_signal = signal.get_decomposition_model()
    np.testing.assert_allclose(
        model_signal.data.reshape(-1, N_CHANNELS),
        reference_loadings @ reference.components_,
        rtol=1e-10,
        atol=1e-10,
    )
    if signal_type == "":
        import matplotlib.pyplot as plt

        signal.plot_decomposition_results()
        assert plt.get_fignums()
        plt.close("all")


@pytest.mark.parametrize("signal_type", ["", "EDS_SEM", "EDS_TEM"])
def test_algorithm_lazy_matches_direct_estimator(signal_type):
    signal, model = simulated_signal(signal_type)
    reference, _, X = direct_fit(signal, model)
    lazy = signal.as_lazy()
    lazy.data = lazy.data.rechunk((5, SHAPE_2D[1], N_CHANNELS))  # blocks of whole rows
    estimator = SmoothNMF(3, G=model, shape_2d=SHAPE_2D, **SOLVER_OPTIONS)
    lazy.decomposition(
        algorithm=estimator, print_info=False, normalize_poissonian_noise=False, navigation_mask=None
    )
    # hyperspy gathers every block, calls fit_transform once: the same spectra
    np.testing.assert_allclose(lazy.learning_results.factors, reference.components_.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(estimator.H_, reference.H_, rtol=0, atol=1e-8)
    # ... then re-projects each block through transform() (no Laplacian across blocks)
    projected = np.concatenate(
        [
            estimator.transform(X[rows : rows + 5 * SHAPE_2D[1]])
            for rows in range(0, X.shape[0], 5 * SHAPE_2D[1])
        ]
    )
    np.testing.assert_allclose(lazy.learning_results.loadings, projected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("signal_type", ["EDS_espm_cli", "EDS_SEM_espm_cli"])
@pytest.mark.parametrize("lazy", [False, True])
def test_decompose_phases_matches_direct_estimator(signal_type, lazy):
    source, _ = simulated_signal("EDS_SEM" if "SEM" in signal_type else "EDS_TEM")
    source.change_dtype("uint16")  # raw integer counts, as files hold them
    source.set_signal_type(signal_type)
    model = source.build_G()
    # decompose_phases takes the workflow's defaults (simplex, init, seed) for what is not given
    from espm_cli.analysis import make_estimator

    reference = make_estimator(3, model, SHAPE_2D, **SOLVER_OPTIONS)
    reference_loadings = reference.fit_transform(
        np.asarray(source.data, dtype=np.float64).reshape(-1, N_CHANNELS)
    )
    from espm_cli.analysis.defaults import DEFAULT_INIT

    assert reference.simplex == "H" and reference.init == DEFAULT_INIT
    signal = source
    if lazy:
        signal = source.as_lazy()
        signal.data = signal.data.rechunk((5, 6, N_CHANNELS))  # blocks across rows too
    results = signal.decompose_phases(3, **SOLVER_OPTIONS)

    assert signal.data.dtype == np.uint16  # the user's data are left alone
    np.testing.assert_allclose(signal.learning_results.factors, reference.components_.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(signal.learning_results.loadings, reference_loadings, rtol=0, atol=1e-8)
    assert signal.learning_results.poissonian_noise_normalized is False
    np.testing.assert_allclose(results.W, reference.W_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(results.maps, reference.H_.reshape(3, *SHAPE_2D), rtol=0, atol=1e-8)
    # phase spectra in counts per pixel, as in the result file
    np.testing.assert_allclose(
        results.spectra, reference.components_ * reference.H_.mean(axis=1)[:, None], rtol=1e-10, atol=1e-12
    )
    assert signal.phase_results is results
    expected = model.composition(reference.W_)
    table = signal.composition_table()
    assert table.elements == tuple(expected.elements)
    # elements below detection get no composition; the detected ones share 100 at.%
    detected = results.result.detected
    assert detected.any() and np.array_equal(np.isnan(table.atomic_percent), ~detected)
    for phase in range(3):
        kept = reference.W_[:, [phase]].copy()
        kept[: len(expected.elements)][~detected[phase], 0] = 0.0
        np.testing.assert_allclose(
            table.atomic_percent[phase][detected[phase]],
            model.composition(kept).atomic_percent[0][detected[phase]],
            atol=1e-8,
        )
    assert str(table).splitlines()[0].split()[1:] == list(expected.elements)
    assert table.phases == results.names and results.names[0].startswith("phase 1 (")


def test_lazy_decompose_phases_fits_once_on_the_nonzero_counts(monkeypatch):
    import scipy.sparse

    source, _ = simulated_signal("EDS_TEM")
    source.set_signal_type("EDS_espm_cli")
    lazy = source.as_lazy()
    lazy.data = lazy.data.rechunk((3, 4, N_CHANNELS))
    seen = []
    fit_transform = SmoothNMF.fit_transform

    def recording_fit_transform(self, X, *args, **kwargs):
        seen.append(X)
        return fit_transform(self, X, *args, **kwargs)

    monkeypatch.setattr(SmoothNMF, "fit_transform", recording_fit_transform)
    lazy.decompose_phases(3, **SOLVER_OPTIONS)
    assert len(seen) == 1 and scipy.sparse.issparse(seen[0])
    X = np.asarray(source.data).reshape(-1, N_CHANNELS)
    np.testing.assert_array_equal(seen[0].toarray(), X)  # every pixel, raster order
    assert seen[0].nnz == np.count_nonzero(X)


def test_plot_phases_draws_maps_beside_spectra():
    signal, _ = simulated_signal("EDS_TEM")
    signal.set_signal_type("EDS_espm_cli")
    signal.decompose_phases(3, lambda_L=0.5, random_state=0, max_iter=10)
    figure = signal.plot_phases()
    images = [ax for ax in figure.axes if ax.images]
    lines = [ax for ax in figure.axes if ax.lines]
    assert len(images) == 3 and len(lines) == 3
    np.testing.assert_allclose(images[0].images[0].get_array(), signal.phase_results.maps[0])
    np.testing.assert_allclose(lines[1].lines[0].get_ydata(), signal.phase_results.spectra[1])
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_methods_before_and_with_bad_arguments():
    signal, model = simulated_signal("EDS_TEM")
    signal.set_signal_type("EDS_espm_cli")
    with pytest.raises(RuntimeError, match="decompose_phases"):
        signal.composition_table()
    with pytest.raises(RuntimeError, match="decompose_phases"):
        signal.plot_phases()
    with pytest.raises(ValueError, match="shape_2d cannot be passed"):
        signal.decompose_phases(3, shape_2d=(1, 120))
    with pytest.raises(ValueError, match="either a ready model"):
        signal.decompose_phases(3, elements=["Fe"], model=model)


@pytest.mark.parametrize("lazy", [False, True])
def test_decompose_phases_on_a_real_sparse_tem_file(lazy):
    path = REALDATA / "test_TEM.bcf"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    signal = espm_cli.load(path, lazy=True)
    signal = signal.inav[:32, :24]  # keep the test fast
    if not lazy:
        signal.compute()
    options = dict(lambda_L=0.5, random_state=2, max_iter=15, tol=1e-8)
    from espm_cli.analysis import EspmWarning, make_estimator

    with pytest.warns(EspmWarning, match=r"1\.7\d keV unexplained \(Si Ka1\?.*add 'Si'"):
        results = signal.decompose_phases(2, **options)
    # the fit window: 0.2 keV up, the zero peak below left out (the model is built on it)
    energy = signal.axes_manager.signal_axes[0].axis
    window = (energy >= results.energy[0] - 1e-9) & (energy <= results.energy[-1] + 1e-9)
    assert results.energy[0] == pytest.approx(0.2, abs=0.011) and 0 < (~window).sum() < 100
    assert results.model.G.shape[0] == window.sum()
    X = np.asarray(signal.data, dtype=np.float64).reshape(24 * 32, -1)
    reference = make_estimator(2, results.model, (24, 32), **options)
    loadings = reference.fit_transform(X[:, window])
    np.testing.assert_allclose(signal.learning_results.loadings, loadings, rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        signal.learning_results.factors[window], reference.components_.T, rtol=0, atol=1e-8
    )
    assert np.all(signal.learning_results.factors[~window] == 0)
    assert np.all(np.isfinite(signal.get_decomposition_model().data))
    assert results.composition.elements == ("Cu", "O", "Pd", "Ti")
    rows = results.composition.atomic_percent
    quantified = np.isfinite(rows).any(axis=1)
    np.testing.assert_allclose(np.nansum(rows[quantified], axis=1), 100.0)
    assert all(kind in ("phase", "continuum", "empty") for kind in results.result.phase_kinds)


def test_line_scan_and_single_spectrum():
    signal, _ = simulated_signal("EDS_TEM")
    signal.set_signal_type("EDS_espm_cli")
    line = signal.inav[:, 4]  # one row of the map: a line scan of 12 pixels
    results = line.decompose_phases(2, lambda_L=1.0, random_state=0, max_iter=10)
    assert results.maps.shape == (2, 1, SHAPE_2D[1])
    assert results.estimator.shape_2d == (1, SHAPE_2D[1])
    with pytest.raises(ValueError, match="0 navigation axes"):
        signal.inav[0, 0].decompose_phases(1)
