"""Choosing the number of phases by the Poisson deviance of held-out entries.

Each k is fitted several times, each time with one fold of entries (pixel, channel) left
out of the loss (the estimator's ``mask=``: held-out entries are masked entries, so the
fit, its starts and regularisers are those of ``espm decompose``; H stays defined for every
pixel, from the entries of that pixel that were kept). The fitted model G W H then
predicts the held-out entries, and the Poisson deviance

    D = 2 Σ_held [ x log(x / y) − x + y ]            (0 log 0 = 0)

measures how well. It falls while k adds real phases and rises once extra phases fit the
noise of the kept entries. The suggestion is the smallest k whose mean held-out deviance is
within one standard error of the best k's (Breiman's one-standard-error rule), the standard
error taken over the folds of the difference to the best k (the folds are shared by every
k, so the Poisson noise of the held-out entries, common to all k, cancels in the
difference; see docs/select_k.md).

Folds are a partition of the entries (each entry is held out exactly once), drawn from a
seed, and balanced so that every pixel keeps (n_folds − 1)/n_folds of its channels in each
fit:

- ``"speckle"``: single entries; each pixel's channels are dealt to the folds in a random
  order (the default: measured sharper, docs/select_k.md);
- ``"blocks"``: tiles of pixels x bands of channels; each tile's bands cycle through the
  folds from a random offset.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

FOLD_KINDS = ("speckle", "blocks")
#: Folds by default (each fit leaves 1/3 of the entries out).
DEFAULT_N_FOLDS = 3
#: Fold shape by default (why: docs/select_k.md).
DEFAULT_FOLD_KIND = "speckle"
#: Block folds: tiles of this many pixels on a side, bands of this many channels.
BLOCK_PIXELS = 4
BLOCK_CHANNELS = 16
#: Pixels per block of the deviance computation (a dense block of the model at a time).
_PIXEL_BLOCK = 2048


def make_folds(
    n_pixels, n_channels, n_folds=DEFAULT_N_FOLDS, *, kind=DEFAULT_FOLD_KIND, seed=0, shape_2d=None
):
    """Fold of each entry: an int8 array (n_pixels, n_channels) with values 0 .. n_folds − 1.

    Parameters
    ----------
    n_pixels, n_channels : int
    n_folds : int
        At least 2; at most the number of channels (speckle) or of channel bands (blocks).
    kind : {"speckle", "blocks"}
    seed : int
    shape_2d : (int, int), optional
        The pixel grid (blocks tile it; without it, runs of ``BLOCK_PIXELS**2`` pixels).

    Returns
    -------
    ndarray of int8
        Every pixel has ⌊c/F⌋ or ⌈c/F⌉ of its channels (speckle) or bands (blocks) in each
        fold, so that no fit loses a whole pixel.

    Raises
    ------
    ValueError
        A bad kind or number of folds, or (in very small images) a channel held out
        in every pixel by one fold.
    """
    if kind not in FOLD_KINDS:
        raise ValueError(f"fold kind {kind!r} is not allowed; choose from {', '.join(FOLD_KINDS)}")
    n_folds = int(n_folds)
    bands = math.ceil(n_channels / BLOCK_CHANNELS)
    most = n_channels if kind == "speckle" else bands
    if not 2 <= n_folds <= min(most, 100):
        raise ValueError(
            f"n_folds={n_folds} is not allowed; it must be from 2 to "
            f"{min(most, 100)} ({kind} folds of {n_channels} channels)"
        )
    rng = np.random.default_rng(seed)
    if kind == "speckle":
        # each pixel's channels dealt round-robin into the folds, in a random order per pixel:
        # shuffling the int8 labels (channel % n_folds) per row gives the same folds as
        # shuffling the channel numbers, in half the time
        labels = (np.arange(n_channels) % n_folds).astype(np.int8)
        folds = rng.permuted(np.tile(labels, (n_pixels, 1)), axis=1)
    else:
        if shape_2d is not None:
            ny, nx = (int(v) for v in shape_2d)
            tile_y = np.arange(ny) // BLOCK_PIXELS
            tile_x = np.arange(nx) // BLOCK_PIXELS
            n_tx = int(tile_x[-1]) + 1
            tiles = (tile_y[:, None] * n_tx + tile_x[None, :]).ravel()
        else:
            tiles = np.arange(n_pixels) // (BLOCK_PIXELS * BLOCK_PIXELS)
        offsets = rng.integers(0, n_folds, size=int(tiles.max()) + 1)
        band = np.arange(n_channels) // BLOCK_CHANNELS
        # a random permutation of the bands per tile would also do; a random offset and a
        # random band order shared by the tiles keep each band's folds balanced too
        band = rng.permutation(bands)[band]
        folds = ((offsets[tiles][:, None] + band[None, :]) % n_folds).astype(np.int8)
    for fold in range(n_folds):
        whole = np.flatnonzero((folds == fold).all(axis=0))
        if whole.size:
            raise ValueError(
                f"fold {fold} holds channel {int(whole[0])} out in every pixel "
                "(too few pixels for these folds); use fewer folds"
            )
    return folds


def poisson_deviance(x, y):
    """2 Σ [x log(x / y) − x + y] (0 log 0 = 0) of counts x against a model y > 0."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    positive = x > 0
    terms = y - x
    terms[positive] += x[positive] * np.log(x[positive] / y[positive])
    return 2.0 * float(terms.sum())


def heldout_deviance(X, G, W, H, held_out):
    """Poisson deviance of the model G W H on the held-out entries of X.

    Parameters
    ----------
    X : ndarray or sparse matrix (n_pixels, n_channels)
    G : ndarray (n_channels, m)
    W : ndarray (m, k)
    H : ndarray (k, n_pixels)
    held_out : ndarray of bool (n_pixels, n_channels)

    Returns
    -------
    (float, int)
        The deviance summed over the held-out entries, and their number.
    """
    B = np.asarray(G, dtype=np.float64) @ np.asarray(W, dtype=np.float64)  # (c, k)
    Ht = np.asarray(H, dtype=np.float64).T
    X = sp.csr_array(X) if sp.issparse(X) else np.asarray(X)
    total, count = 0.0, 0
    for start in range(0, Ht.shape[0], _PIXEL_BLOCK):
        stop = min(start + _PIXEL_BLOCK, Ht.shape[0])
        mask = held_out[start:stop]
        model = Ht[start:stop] @ B.T  # (pixels, c)
        block = X[start:stop]
        x = block.toarray() if sp.issparse(block) else np.asarray(block)
        total += poisson_deviance(x[mask], model[mask])
        count += int(mask.sum())
    return total, count


@dataclasses.dataclass
class KSelection:
    """Held-out deviance per number of phases, and the suggested number.

    Attributes
    ----------
    k_values : ndarray of int (n_k,)
    heldout : ndarray (n_k, n_folds)
        Held-out Poisson deviance per held-out entry, per k and fold.
    training : ndarray (n_k, n_folds)
        The fits' deviance per kept entry (twice the fitted KL divergence: the data term the
        fit minimised, on the entries it saw).
    mean : ndarray (n_k,)
        Mean held-out deviance per entry over the folds.
    standard_error : ndarray (n_k,)
        Standard error over the folds of the difference to the best k (0 at the best).
    best_k : int
        Lowest mean held-out deviance.
    suggested_k : int
        Smallest k with ``mean <= mean[best] + standard_error``.
    n_folds : int
    fold_kind : str
    fold_seed : int
    seconds : ndarray (n_k, n_folds)
    """

    k_values: np.ndarray
    heldout: np.ndarray
    training: np.ndarray
    n_folds: int
    fold_kind: str
    fold_seed: int
    seconds: np.ndarray
    mean: np.ndarray = dataclasses.field(init=False)
    standard_error: np.ndarray = dataclasses.field(init=False)
    best_k: int = dataclasses.field(init=False)
    suggested_k: int = dataclasses.field(init=False)

    def __post_init__(self):
        self.k_values = np.asarray(self.k_values, dtype=int)
        self.heldout = np.asarray(self.heldout, dtype=np.float64)
        self.training = np.asarray(self.training, dtype=np.float64)
        self.seconds = np.asarray(self.seconds, dtype=np.float64)
        self.mean, self.standard_error, best, suggested = suggest_k(self.heldout)
        self.best_k = int(self.k_values[best])
        self.suggested_k = int(self.k_values[suggested])

    def rows(self) -> list[dict]:
        """One dict per k: the numbers of select_k.csv."""
        out = []
        for i, k in enumerate(self.k_values):
            out.append(
                {
                    "k": int(k),
                    "heldout_deviance": float(self.mean[i]),
                    "heldout_se": float(self.standard_error[i]),
                    "heldout_folds": " ".join(f"{v:.8g}" for v in self.heldout[i]),
                    "training_deviance": float(np.mean(self.training[i])),
                    "suggested": int(k) == self.suggested_k,
                    "best": int(k) == self.best_k,
                    "seconds": float(np.sum(self.seconds[i])),
                }
            )
        return out


def suggest_k(heldout):
    """The one-standard-error rule over a table of held-out deviances.

    Parameters
    ----------
    heldout : ndarray (n_k, n_folds)
        Held-out deviance per k (in increasing order of k) and fold.

    Returns
    -------
    mean : ndarray (n_k,)
    standard_error : ndarray (n_k,)
        Of the difference to the best k, over the folds (0 for the best itself).
    best : int
        Index of the lowest mean.
    suggested : int
        Index of the smallest k with ``mean - mean[best] <= standard_error``.
    """
    heldout = np.asarray(heldout, dtype=np.float64)
    n_folds = heldout.shape[1]
    mean = heldout.mean(axis=1)
    best = int(np.argmin(mean))
    difference = heldout - heldout[best]
    if n_folds > 1:
        se = difference.std(axis=1, ddof=1) / math.sqrt(n_folds)
    else:
        se = np.zeros(heldout.shape[0])
    within = np.flatnonzero(mean - mean[best] <= se)
    return mean, se, best, int(within[0])


def parse_k_range(text):
    """``"2..8"``, ``"2-8"``, ``"3"`` or ``"2,3,5"`` -> a sorted tuple of k >= 1.

    Raises
    ------
    ValueError
        With what is wrong and how to write it.
    """
    spelled = str(text).strip()
    how = "write it as LOW..HIGH (e.g. 2..8), or a list such as 2,3,5"
    try:
        if ".." in spelled or ("-" in spelled.lstrip("-") and "," not in spelled):
            low, high = (
                spelled.replace("..", "-", 1).split("-", 1) if ".." in spelled else spelled.split("-", 1)
            )
            low, high = int(low), int(high)
            if low > high:
                raise ValueError(f"k range {spelled!r} runs backwards; {how}")
            values = tuple(range(low, high + 1))
        else:
            values = tuple(sorted({int(part) for part in spelled.split(",") if part.strip()}))
    except ValueError as error:
        if "backwards" in str(error):
            raise
        raise ValueError(f"k range {spelled!r} is not a range of whole numbers; {how}") from None
    if not values:
        raise ValueError(f"k range {spelled!r} names no k; {how}")
    if values[0] < 1:
        raise ValueError(f"k range {spelled!r} starts below 1; every k must be >= 1")
    if len(values) > 100:
        raise ValueError(f"k range {spelled!r} holds {len(values)} values; at most 100")
    return values


def fold_fits(X, k, model, shape_2d, folds, *, channels=None, **estimator_options):
    """Fit k phases once per fold, each with that fold's entries left out.

    Parameters
    ----------
    X : ndarray or sparse (n_pixels, n_channels)
        The counts of the fit window (as :func:`~.decomposition.fit_matrix` makes them).
    k : int
    model : EDXModel or None
    shape_2d : (int, int)
    folds : ndarray of int8 (n_pixels, n_channels)
        From :func:`make_folds`.
    channels : slice or ndarray of bool, optional
        Rows of the model's G that X covers.
    **estimator_options
        SmoothNMF arguments (the decompose options).

    Returns
    -------
    heldout, training, seconds : ndarray (n_folds,)
        Held-out deviance per held-out entry, training deviance per kept entry, seconds.
    """
    import time

    from sklearn.exceptions import ConvergenceWarning

    from .decomposition import make_estimator

    if "mask" in estimator_options:
        raise ValueError("mask cannot be passed here: the folds set it")
    n_folds = int(folds.max()) + 1
    heldout, training, seconds = (np.zeros(n_folds) for _ in range(3))
    for fold in range(n_folds):
        held = folds == fold
        started = time.perf_counter()
        estimator = make_estimator(k, model, shape_2d, channels=channels, mask=held, **estimator_options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="X holds non-integer values")
            estimator.fit(X)
        deviance, count = heldout_deviance(X, estimator.G_, estimator.W_, estimator.H_, held)
        seconds[fold] = time.perf_counter() - started
        heldout[fold] = deviance / count
        # twice the divergence, as the deviance; the fit ran at the data scale (normalize)
        training[fold] = 2.0 * float(estimator.losses_[-1, 0]) / estimator.data_scale_ / (held.size - count)
        logger.info(
            "k=%d fold %d/%d: held-out deviance %.6g per entry (%.1f s)",
            k,
            fold + 1,
            n_folds,
            heldout[fold],
            seconds[fold],
        )
    return heldout, training, seconds


def select_k(
    X,
    k_values,
    *,
    model=None,
    shape_2d,
    n_folds=DEFAULT_N_FOLDS,
    fold_kind=DEFAULT_FOLD_KIND,
    fold_seed=0,
    channels=None,
    **estimator_options,
):
    """Held-out deviance for each k of ``k_values`` and the suggested k (matrices in).

    Parameters
    ----------
    X : ndarray or sparse (n_pixels, n_channels)
    k_values : sequence of int
    model : EDXModel or None
    shape_2d : (int, int)
    n_folds, fold_kind, fold_seed
        See :func:`make_folds`.
    channels : optional
        Rows of the model's G that X covers.
    **estimator_options
        SmoothNMF arguments.

    Returns
    -------
    KSelection
    """
    from .decomposition import fit_matrix

    X = fit_matrix(X)
    k_values = tuple(sorted({int(k) for k in k_values}))
    folds = make_folds(X.shape[0], X.shape[1], n_folds, kind=fold_kind, seed=fold_seed, shape_2d=shape_2d)
    table = [
        fold_fits(X, k, model, shape_2d, folds, channels=channels, **estimator_options) for k in k_values
    ]
    selection = KSelection(
        k_values,
        [row[0] for row in table],
        [row[1] for row in table],
        n_folds=n_folds,
        fold_kind=fold_kind,
        fold_seed=fold_seed,
        seconds=[row[2] for row in table],
    )
    warn_at_edge(selection)
    return selection


def warn_at_edge(selection: KSelection) -> None:
    """Warn when the best k is the largest tried: the range may stop too soon."""
    from .notices import EspmWarning

    if selection.best_k == selection.k_values[-1] and len(selection.k_values) > 1:
        warnings.warn(
            f"the held-out deviance is lowest at the largest k tried "
            f"({selection.best_k}); try a range reaching further",
            EspmWarning,
            stacklevel=3,
        )


def _image_matrix(config, loaded=None):
    """The counts, model, grid and G rows of a run configuration, as ``espm decompose`` fits them.

    ``loaded``: (image, window, model) of a run of this configuration that has just read the
    file (``RunOutcome.loaded``), used instead of reading it again unless it was read lazily.

    Returns
    -------
    (X, model, shape_2d, channels, estimator_options)
    """
    from .decomposition import fit_matrix, solver_arguments
    from .run import energy_mask, full_config, prepare, read_image

    config = full_config(config)
    if loaded is not None and not loaded[0].is_lazy:
        image, window, model = loaded
    else:
        image = read_image(config)
        window, model = prepare(image, config)
    fitted = image if window.is_whole_axis else image.select_channels(window.start, window.stop)
    X = fit_matrix(fitted.counts)
    options = solver_arguments(config)
    channels = None
    if config.get("mask_energy"):
        # the folds are an entry mask; the masked channels are left out of X and G instead
        kept = ~energy_mask(fitted.energy, config["mask_energy"])
        X = fit_matrix(X[:, np.flatnonzero(kept)])
        channels = kept
    return X, model, fitted.shape_2d, channels, options


def select_from_config(
    config, k_values, *, n_folds=DEFAULT_N_FOLDS, fold_kind=DEFAULT_FOLD_KIND, fold_seed=0
):
    """:func:`select_k` on the file and options of a run configuration (``espm decompose``'s).

    Parameters
    ----------
    config : dict or RunConfig
        Decompose options by name, with ``file``; ``n_components`` is ignored.
    k_values : sequence of int

    Returns
    -------
    KSelection
    """
    X, model, shape_2d, channels, options = _image_matrix(config)
    return select_k(
        X,
        k_values,
        model=model,
        shape_2d=shape_2d,
        n_folds=n_folds,
        fold_kind=fold_kind,
        fold_seed=fold_seed,
        channels=channels,
        **options,
    )


def heldout_of_config(
    config, *, n_folds=DEFAULT_N_FOLDS, fold_kind=DEFAULT_FOLD_KIND, fold_seed=0, loaded=None
):
    """Fold fits of one run configuration at its own ``n_components``.

    ``loaded``: the data a run of this configuration read (:func:`_image_matrix`).

    Returns
    -------
    dict
        ``heldout`` and ``training`` (per fold), the fold settings, ``seconds``: what a batch
        or ``espm select-k`` keeps beside the run's result (:data:`HELDOUT_FILE`).
    """
    from .run import full_config

    config = full_config(config)
    X, model, shape_2d, channels, options = _image_matrix(config, loaded)
    folds = make_folds(X.shape[0], X.shape[1], n_folds, kind=fold_kind, seed=fold_seed, shape_2d=shape_2d)
    heldout, training, seconds = fold_fits(
        X, int(config["n_components"]), model, shape_2d, folds, channels=channels, **options
    )
    return {
        "k": int(config["n_components"]),
        **fold_settings(n_folds, fold_kind, fold_seed),
        "heldout": heldout.tolist(),
        "training": training.tolist(),
        "seconds": float(seconds.sum()),
    }


#: The file a run's fold fits are kept in, beside its result.
HELDOUT_FILE = "heldout.json"


#: The largest number of folds (``espm select-k --folds``, ``select_k: {folds: ...}``).
MAX_FOLDS = 100
#: The largest fold seed (numpy's seed range).
MAX_FOLD_SEED = 2**32 - 1


def fold_settings(n_folds=DEFAULT_N_FOLDS, fold_kind=DEFAULT_FOLD_KIND, fold_seed=0) -> dict:
    """The fold settings as stored (and compared when a run is resumed), checked.

    Raises
    ------
    ValueError
        A number of folds outside 2 .. 100, an unknown fold kind, or a seed outside
        0 .. 2³² − 1 (one line naming the setting).
    """
    if not _is_integer(n_folds) or not 2 <= n_folds <= MAX_FOLDS:
        raise ValueError(f"folds must be an integer from 2 to {MAX_FOLDS}, got {n_folds!r}")
    if fold_kind not in FOLD_KINDS:
        raise ValueError(f"fold_kind must be one of {', '.join(FOLD_KINDS)}, got {fold_kind!r}")
    if not _is_integer(fold_seed) or not 0 <= fold_seed <= MAX_FOLD_SEED:
        raise ValueError(f"fold_seed must be an integer from 0 to {MAX_FOLD_SEED}, got {fold_seed!r}")
    return {"n_folds": int(n_folds), "fold_kind": str(fold_kind), "fold_seed": int(fold_seed)}


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def study_fold_settings(value):
    """The fold settings of a study's ``select_k:`` entry, or None when it is off.

    ``true`` takes the defaults; a mapping with any of ``folds``, ``fold_kind`` and
    ``fold_seed`` (the options of ``espm select-k``) turns it on with those.

    Raises
    ------
    ValueError
        Anything else, an unknown key, or a bad value (:func:`fold_settings`).
    """
    if value is False or value is None:
        return None
    if value is True:
        return fold_settings()
    if not isinstance(value, dict):
        raise ValueError(
            f"select_k must be true, false or a mapping of folds, fold_kind and fold_seed, got {value!r}"
        )
    unknown = sorted(set(value) - {"folds", "fold_kind", "fold_seed"})
    if unknown:
        raise ValueError(
            f"select_k has unknown key {unknown[0]!r}; the keys are folds, fold_kind and fold_seed"
        )
    return fold_settings(
        value.get("folds", DEFAULT_N_FOLDS),
        value.get("fold_kind", DEFAULT_FOLD_KIND),
        value.get("fold_seed", 0),
    )


def read_heldout(folder, settings: dict):
    """A run folder's held-out record when it was made with ``settings``; else None."""
    import json
    from pathlib import Path

    try:
        record = json.loads((Path(folder) / HELDOUT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(key) != value for key, value in settings.items()):
        return None
    return record


def write_heldout(config, folder, settings: dict, loaded=None) -> dict:
    """Fit the folds of a run and write :data:`HELDOUT_FILE` into ``folder`` (atomically).

    ``loaded``: the run's ``RunOutcome.loaded``, so that the file is not read again.
    """
    import json
    from pathlib import Path

    from ..io import write_text_atomic

    record = heldout_of_config(config, **settings, loaded=loaded)
    write_text_atomic(Path(folder) / HELDOUT_FILE, json.dumps(record) + "\n")
    return record


def selection_from_records(records) -> KSelection:
    """The KSelection of held-out records of one sweep (one per k, same folds)."""
    records = sorted(records, key=lambda r: r["k"])
    first = records[0]
    return KSelection(
        [r["k"] for r in records],
        [r["heldout"] for r in records],
        [r["training"] for r in records],
        n_folds=first["n_folds"],
        fold_kind=first["fold_kind"],
        fold_seed=first["fold_seed"],
        seconds=[[r["seconds"]] for r in records],
    )
