"""Choosing k by held-out deviance: the folds, the deviance, the rule, the fits."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from espm_cli.analysis.notices import EspmWarning
from espm_cli.analysis.select_k import (
    BLOCK_CHANNELS,
    BLOCK_PIXELS,
    KSelection,
    fold_fits,
    heldout_deviance,
    make_folds,
    parse_k_range,
    select_k,
    suggest_k,
)


@pytest.mark.parametrize("kind", ["speckle", "blocks"])
@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_folds_partition_the_entries_and_every_pixel_keeps_data(kind, n_folds):
    n_pixels, n_channels = 12 * 10, 100
    folds = make_folds(n_pixels, n_channels, n_folds, kind=kind, seed=3, shape_2d=(12, 10))
    assert folds.shape == (n_pixels, n_channels)
    masks = [folds == f for f in range(n_folds)]
    # disjoint and covering: every entry in exactly one fold
    assert np.array_equal(np.sum(masks, axis=0), np.ones((n_pixels, n_channels)))
    for mask in masks:
        kept_per_pixel = (~mask).sum(axis=1)
        kept_per_channel = (~mask).sum(axis=0)
        assert kept_per_pixel.min() > 0 and kept_per_channel.min() > 0
        # balanced: each fold takes about 1/F of every pixel's channels
        unit = 1 if kind == "speckle" else BLOCK_CHANNELS
        held = mask.sum(axis=1)
        assert held.max() <= math.ceil(n_channels / unit / n_folds) * unit
        assert held.min() >= (math.floor(n_channels / unit / n_folds) - 1) * unit


def test_folds_are_seeded():
    a = make_folds(50, 60, 3, seed=1)
    assert np.array_equal(a, make_folds(50, 60, 3, seed=1))
    assert not np.array_equal(a, make_folds(50, 60, 3, seed=2))
    b = make_folds(64, 64, 3, kind="blocks", seed=1, shape_2d=(8, 8))
    assert np.array_equal(b, make_folds(64, 64, 3, kind="blocks", seed=1, shape_2d=(8, 8)))


def test_block_folds_are_tiles_times_bands():
    ny, nx, c = 8, 12, 64
    folds = make_folds(ny * nx, c, 4, kind="blocks", seed=0, shape_2d=(ny, nx)).reshape(ny, nx, c)
    for ty in range(0, ny, BLOCK_PIXELS):
        for tx in range(0, nx, BLOCK_PIXELS):
            for band in range(0, c, BLOCK_CHANNELS):
                block = folds[ty : ty + BLOCK_PIXELS, tx : tx + BLOCK_PIXELS, band : band + BLOCK_CHANNELS]
                assert np.unique(block).size == 1  # one fold per tile x band


@pytest.mark.parametrize("bad", [dict(n_folds=1), dict(n_folds=200), dict(kind="rows")])
def test_bad_folds_are_refused(bad):
    arguments = {"n_folds": 3, "kind": "speckle", **bad}
    with pytest.raises(ValueError, match="not allowed"):
        make_folds(20, 50, **arguments)


def test_heldout_deviance_matches_a_direct_sum():
    rng = np.random.default_rng(0)
    G, W, H = rng.random((30, 4)), rng.random((4, 3)), rng.random((3, 25))
    X = rng.poisson(3 * (G @ W @ H).T)
    held = rng.random(X.shape) < 0.3
    direct = 0.0
    Y = (G @ W @ H).T
    for p in range(X.shape[0]):
        for c in range(X.shape[1]):
            if held[p, c]:
                x, y = float(X[p, c]), float(Y[p, c])
                direct += 2 * ((x * math.log(x / y) if x > 0 else 0.0) - x + y)
    for form in (X, sp.csr_matrix(X)):
        deviance, count = heldout_deviance(form, G, W, H, held)
        assert count == held.sum()
        assert deviance == pytest.approx(direct, rel=1e-12)


def test_heldout_entries_do_not_change_the_fit():
    """The folds are masked entries: whatever the held-out counts, the fit is the same."""
    from espm_cli.solver import SmoothNMF

    rng = np.random.default_rng(1)
    G, W = rng.random((40, 4)), rng.random((4, 2))
    H = rng.dirichlet([1, 1], 64).T
    X = rng.poisson(20 * (G @ W @ H).T)
    held = make_folds(64, 40, 3, seed=0) == 1
    other = X.copy()
    other[held] = rng.poisson(50, held.sum())
    fits = []
    for data in (X, other):
        estimator = SmoothNMF(
            2, G=G, simplex="H", shape_2d=(8, 8), lambda_L=0.5, mask=held, max_iter=30, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(data)
        fits.append((estimator.W_, estimator.H_))
    np.testing.assert_allclose(fits[0][0], fits[1][0], rtol=1e-10)
    np.testing.assert_allclose(fits[0][1], fits[1][1], rtol=1e-10)


def test_suggestion_is_the_smallest_k_within_one_standard_error():
    # k = 1 .. 5; the folds move together (a common offset per fold), so the paired
    # differences have a small spread: 3 is within 1 SE of the best (4), 2 is not
    offsets = np.array([0.0, 0.01, -0.01])
    means = np.array([1.30, 1.10, 1.0005, 1.0, 1.002])
    jitter = np.array([[0, 0, 0], [0, 0, 0], [0.0, 0.001, -0.001], [0, 0, 0], [0, 0, 0]])
    table = means[:, None] + offsets[None, :] + jitter
    mean, se, best, suggested = suggest_k(table)
    assert best == 3
    assert se[best] == 0.0
    assert se[2] == pytest.approx(np.std([0, 0.001, -0.001], ddof=1) / math.sqrt(3))
    assert mean[2] - mean[3] <= se[2]
    assert suggested == 2
    # without the jitter k = 3 is 5e-4 above with no spread: not within, the best stays
    mean, se, best, suggested = suggest_k(means[:, None] + offsets[None, :])
    assert suggested == best == 3


def test_selection_rows_and_edge_warning():
    heldout = np.array([[3.0, 3.1], [2.0, 2.1], [1.0, 1.1]])
    selection = KSelection(
        [2, 3, 4],
        heldout,
        heldout - 0.1,
        n_folds=2,
        fold_kind="speckle",
        fold_seed=0,
        seconds=np.ones((3, 2)),
    )
    assert selection.suggested_k == selection.best_k == 4
    rows = selection.rows()
    assert [r["k"] for r in rows] == [2, 3, 4] and rows[2]["suggested"]
    from espm_cli.analysis.select_k import warn_at_edge

    with pytest.warns(EspmWarning, match="lowest at the largest k"):
        warn_at_edge(selection)


@pytest.mark.parametrize(
    "text, expected", [("2..8", tuple(range(2, 9))), ("3", (3,)), ("2-4", (2, 3, 4)), ("5,2,3", (2, 3, 5))]
)
def test_k_ranges(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("8..2", "runs backwards"),
        ("a..b", "whole numbers"),
        ("0..3", "starts below 1"),
        ("", "names no k"),
        ("1..500", "at most 100"),
    ],
)
def test_bad_k_ranges(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_k_range(text)


def test_select_k_finds_two_phases_of_a_small_simulation():
    """Plain NMF (G = identity) of two well separated spectra: k = 2 is suggested."""
    rng = np.random.default_rng(0)
    n_channels = 60
    channels = np.arange(n_channels)
    spectra = np.stack([np.exp(-0.5 * ((channels - centre) / 3.0) ** 2) + 0.05 for centre in (15, 40)])
    ny = nx = 12
    abundance = np.zeros((2, ny * nx))
    abundance[0] = np.repeat(np.linspace(0, 1, nx)[None, :], ny, axis=0).ravel()
    abundance[1] = 1 - abundance[0]
    X = rng.poisson(8.0 * (spectra.T @ abundance).T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection = select_k(X, [1, 2, 3], shape_2d=(ny, nx), n_folds=3, max_iter=60)
    assert selection.mean[0] > selection.mean[1]  # one phase cannot explain the data
    assert selection.suggested_k == 2
    assert selection.heldout.shape == (3, 3)
    # from k = 2 on, the fits predict the entries they saw better than those they did not
    assert np.all(selection.training[1:].mean(axis=1) < selection.mean[1:])


def test_fold_fits_refuse_a_mask():
    with pytest.raises(ValueError, match="mask cannot be passed"):
        fold_fits(np.ones((16, 20)), 1, None, (4, 4), make_folds(16, 20, 2), mask=np.zeros(20, bool))


def test_speckle_folds_deal_each_pixels_channels_in_a_random_order():
    """The folds are channel numbers shuffled per pixel, taken modulo the number of folds
    (shuffling the labels instead draws the same permutation)."""
    n_pixels, n_channels, n_folds = 30, 47, 3
    order = np.random.default_rng(11).permuted(np.tile(np.arange(n_channels), (n_pixels, 1)), axis=1)
    expected = order % n_folds
    np.testing.assert_array_equal(make_folds(n_pixels, n_channels, n_folds, seed=11), expected)
