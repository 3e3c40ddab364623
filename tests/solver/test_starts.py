"""The starts of SmoothNMF: vertex starts in G's columns, n_init, scale equivariance."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from solver_helpers import tiny_problem

from espm_cli.simulate import SimulationSettings, simulate
from espm_cli.simulate.phases import Phase
from espm_cli.simulate.synthetic import _edx_model
from espm_cli.solver import SmoothNMF
from espm_cli.solver.initialization import kmeans_vertices, spa_vertices, vertex_start


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(**params).fit(X)


def _angles_deg(G, W_fit, W_true):
    """Spectral angle of each true phase to its best-matching fitted phase."""
    from scipy.optimize import linear_sum_assignment

    a = (G @ W_fit).T
    b = (G @ W_true).T
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    angles = np.degrees(np.arccos(np.clip(a @ b.T, -1, 1)))
    rows, columns = linear_sum_assignment(angles)
    return angles[rows, columns]


@pytest.fixture(scope="module")
def minor_phases():
    """A matrix and three minor particle phases (~4 % each) sharing Fe, Ti and O."""
    phases = (
        Phase("silicate", {"O": 62.0, "Si": 30.0, "Al": 8.0}),
        Phase("FePt", {"Fe": 50.0, "Pt": 50.0}),
        Phase("TiO2", {"Ti": 33.3, "O": 66.7}),
        Phase("FeTiO3", {"Fe": 20.0, "Ti": 20.0, "O": 60.0}),
    )
    settings = SimulationSettings(
        phases=phases,
        shapes=("particles:0.04",) * 3,
        size=(64, 64),
        dose=300.0,
        n_channels=1000,
        energy_scale_keV=0.02,
        seed=3,
    )
    simulation = simulate(settings)
    model = _edx_model(settings, simulation.elements)
    X = sp.csr_matrix(simulation.counts.reshape(64 * 64, -1))
    return X, model, simulation.truth.W


def test_spa_start_finds_the_minor_phases_where_nndsvda_does_not(minor_phases):
    X, model, W_true = minor_phases
    common = dict(n_components=4, G=model, simplex="H", shape_2d=(64, 64), random_state=0)
    spa = _fit(X, init="spa", n_init=1, **common)
    nndsvda = _fit(X, init="nndsvda", n_init=1, **common)
    spa_angles = _angles_deg(model.G, spa.W_, W_true)
    assert spa_angles.max() < 3.0, spa_angles
    assert _angles_deg(model.G, nndsvda.W_, W_true).mean() > 2 * spa_angles.mean()
    assert spa.losses_[-1, -1] < nndsvda.losses_[-1, -1]


@pytest.mark.parametrize("init", ["spa", "kmeans"])
def test_vertex_starts_are_seeded_and_feasible(minor_phases, init):
    X, model, _ = minor_phases
    fits = [
        _fit(X, n_components=4, G=model, simplex="H", init=init, n_init=1, max_iter=1, random_state=seed)
        for seed in (5, 5, 6)
    ]
    np.testing.assert_array_equal(fits[0].W_, fits[1].W_)
    np.testing.assert_array_equal(fits[0].H_, fits[1].H_)
    if init == "kmeans":
        assert not np.array_equal(fits[0].W_, fits[2].W_)
    for fit in fits:
        assert fit.W_.min() >= fit.eps and fit.H_.min() >= fit.eps
        np.testing.assert_allclose(fit.H_.sum(axis=0), 1.0, atol=1e-9)


def test_start_handles_more_phases_than_columns_and_empty_pixels():
    X, G, _ = tiny_problem(seed=2, n_channels=12, shape_2d=(5, 6), n_components=2)
    X[[0, 7, 29]] = 0  # pixels without counts
    m = G.shape[1]  # 5 columns; ask for 7 phases
    for simplex in ("H", None):
        fit = _fit(
            X,
            n_components=m + 2,
            G=G,
            init="spa",
            n_init=1,
            simplex=simplex,
            max_iter=5,
            random_state=0,
            backend="reference",
        )
        assert np.all(np.isfinite(fit.W_)) and np.all(np.isfinite(fit.H_))
        assert fit.W_.min() >= fit.eps and fit.H_.min() >= fit.eps
        assert np.isfinite(fit.losses_).all()
        # no two starting phases coincide
        spectra = (G @ fit.W_).T
        spectra /= np.linalg.norm(spectra, axis=1, keepdims=True)
        gram = spectra @ spectra.T
        assert np.all(gram[~np.eye(m + 2, dtype=bool)] < 1 - 1e-9)


def test_spa_picks_the_corners_of_a_noisy_simplex():
    rng = np.random.default_rng(0)
    corners = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    mixture = rng.dirichlet([0.3, 0.3, 0.3], 3000)
    points = (mixture @ corners + rng.normal(0, 0.2, (3000, 2))).T
    lifted = np.vstack([np.ones(3000), points])  # SPA works on uncentred coordinates
    weights = np.ones(3000)
    found = spa_vertices(lifted, 3, weights, n_neighbours=20)[:, 1:]
    refined = kmeans_vertices(
        lifted, 3, weights, np.random.default_rng(0), seeds=spa_vertices(lifted, 3, weights, 20)
    )[:, 1:]
    for vertices, tolerance in ((found, 1.0), (refined, 3.0)):
        distance = np.linalg.norm(vertices[:, None, :] - corners[None], axis=2)
        assert np.all(distance.min(axis=0) < tolerance), vertices


def test_vertex_start_scale_free():
    """The start itself: W scales with the counts, H does not change."""
    X, G, _ = tiny_problem(seed=4, n_channels=15, shape_2d=(6, 6), n_components=3)
    A = np.linalg.lstsq(G, X.T, rcond=None)[0].clip(1e-3)
    totals = X.sum(axis=1)
    W1, H1 = vertex_start(
        "spa", A, totals, 3, np.random.default_rng(0), column_sums=G.sum(axis=0), eps=1e-10, shape_2d=(6, 6)
    )
    W2, H2 = vertex_start(
        "spa",
        A / 250.0,
        totals / 250.0,
        3,
        np.random.default_rng(0),
        column_sums=G.sum(axis=0),
        eps=1e-10,
        shape_2d=(6, 6),
    )
    np.testing.assert_allclose(W1, W2, rtol=1e-9)
    np.testing.assert_allclose(H1 / 250.0, H2, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("init", ["spa", "kmeans", "nndsvda", "random"])
@pytest.mark.parametrize("simplex", ["H", "W", None])
@pytest.mark.filterwarnings("ignore:X holds non-integer values")
def test_every_start_gives_the_same_fit_in_any_unit_of_counts(init, simplex):
    X, G, continuum = tiny_problem(seed=5, n_channels=15, shape_2d=(6, 6), n_components=3)
    scale = 1 / 137.0  # e.g. counts per second, or counts divided by the dose
    common = dict(
        n_components=3,
        G=G,
        G_continuum=continuum,
        simplex=simplex,
        init=init,
        n_init=2,
        max_iter=25,
        tol=0.0,
        random_state=0,
        backend="reference",
        shape_2d=(6, 6),
    )
    counts = _fit(X, **common)
    scaled = _fit(X * scale, **common)
    np.testing.assert_allclose(scaled.losses_[:, 0], counts.losses_[:, 0] * scale, rtol=1e-6)
    # W carries the unit (or H, under simplex="W"); the spectra and the maps' shapes do not.
    # Entries at the lower bound eps do not scale: compare to a tolerance well above it.
    # Without a simplex the unit may sit in either factor: compare the model and the
    # normalised spectra instead.
    if simplex is None:
        np.testing.assert_allclose(
            scaled.W_ @ scaled.H_,
            counts.W_ @ counts.H_ * scale,
            rtol=1e-6,
            atol=1e-7 * scale * (counts.W_ @ counts.H_).max(),
        )
        np.testing.assert_allclose(
            scaled.W_ / scaled.W_.sum(axis=0), counts.W_ / counts.W_.sum(axis=0), rtol=1e-6, atol=1e-7
        )
        return
    W_unit, H_unit = (1.0, scale) if simplex == "W" else (scale, 1.0)
    np.testing.assert_allclose(scaled.W_, counts.W_ * W_unit, rtol=1e-6, atol=1e-7 * counts.W_.max() * W_unit)
    np.testing.assert_allclose(scaled.H_, counts.H_ * H_unit, rtol=1e-6, atol=1e-7 * counts.H_.max() * H_unit)


def test_n_init_keeps_the_start_with_the_lowest_objective(minor_phases):
    X, model, _ = minor_phases
    common = dict(
        n_components=4, G=model, simplex="H", shape_2d=(64, 64), random_state=1, max_iter=40, tol=1e-6
    )
    best_of = _fit(X, init="nndsvda", n_init=3, **common)
    assert best_of.init_objectives_.shape == (3,)
    lowest = best_of.init_objectives_.min()
    assert best_of.best_init_ == np.flatnonzero(best_of.init_objectives_ <= lowest + 1e-9 * abs(lowest))[0]
    assert best_of.losses_[-1, -1] == best_of.init_objectives_[best_of.best_init_]
    assert np.all(np.diff(best_of.losses_[:, -1]) <= 1e-9 * best_of.losses_[0, -1])
    # each start alone gives its own objective: the best of them is kept
    alone = [_fit(X, init=method, n_init=1, **common).losses_[-1, -1] for method in ("nndsvda", "spa")]
    np.testing.assert_allclose(best_of.init_objectives_[:2], alone, rtol=1e-12)
    assert best_of.losses_[-1, -1] <= min(alone) * (1 + 1e-12)


def test_auto_is_one_start(minor_phases):
    X, model, _ = minor_phases
    fit = _fit(X, n_components=4, G=model, simplex="H", shape_2d=(64, 64), random_state=0)
    assert fit.init_objectives_.shape == (1,) and fit.best_init_ == 0


def test_parallel_and_serial_starts_agree(minor_phases, monkeypatch):
    X, model, _ = minor_phases
    common = dict(n_components=4, G=model, simplex="H", init="spa", n_init=3, random_state=2, max_iter=15)
    parallel = _fit(X, **common)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    serial = _fit(X, **common)
    np.testing.assert_array_equal(parallel.W_, serial.W_)
    np.testing.assert_array_equal(parallel.H_, serial.H_)
    np.testing.assert_array_equal(parallel.init_objectives_, serial.init_objectives_)


def test_custom_start_takes_one_init(minor_phases):
    X, model, W_true = minor_phases
    with pytest.raises(ValueError, match="n_init=1"):
        SmoothNMF(4, G=model, init="custom", n_init=2).fit(X, W=W_true, H=np.ones((4, X.shape[0])))
    with pytest.raises(ValueError, match="n_init"):
        SmoothNMF(4, G=model, n_init=0).fit(X)
