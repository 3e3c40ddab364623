"""What each phase is: its counts, line vs continuum share, detected elements, name.

Detection test
--------------
For phase p and element e, the modelled line counts of e inside its line window (the
channels where e's column of G is at least ``LINE_WINDOW_FRACTION`` of its peak) are
compared with the other counts the data hold there, in the phase's share of each pixel
(pixel j counts with the phase's share of the model's counts in j): all phases'
continuum and lines under the window, less e's own line counts in p. e is detected when
its line counts exceed ``DETECTION_SIGMA`` standard deviations of those (Poisson: the
square root of the counts), and at least ``MIN_LINE_COUNTS`` counts. A phase whose lines
are a few counts spread over pixels that hold thousands is thus not "detected", however
large its element weights are relative to the solver's lower bound. An element that is not detected gets
no composition (NaN); the detected elements of a phase share 100 at.%. A phase with no
detected element is named "continuum"; a phase with (almost) no counts at all "empty".
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Channels where an element's column of G is at least this share of its peak form its
#: line window.
LINE_WINDOW_FRACTION = 0.1
#: An element is detected in a phase when its line counts exceed this many standard
#: deviations of the phase's other counts under its lines.
DETECTION_SIGMA = 3.0
#: ... and at least this many counts (a line on no background still needs counts).
MIN_LINE_COUNTS = 3.0
#: A phase holding fewer counts than this (or this share of all modelled counts) is empty.
EMPTY_COUNTS = 1.0
EMPTY_SHARE = 1e-6

KIND_PHASE, KIND_CONTINUUM, KIND_EMPTY = "phase", "continuum", "empty"


@dataclasses.dataclass(frozen=True)
class PhaseDescription:
    """What each of the k phases holds.

    Attributes
    ----------
    counts : ndarray (k,)
        Modelled counts of each phase over the image (in the fit window).
    line_fraction : ndarray (k,)
        Share of those counts in element lines (the rest is continuum); NaN without physics.
    elements : tuple of str
        The quantified elements (columns of the arrays below).
    line_counts : ndarray (k, n_elements)
        Modelled counts of each element's lines inside its line window.
    detection_limit : ndarray (k, n_elements)
        Line counts needed for detection (``DETECTION_SIGMA`` sigma of the other counts).
    detected : ndarray of bool (k, n_elements)
    composition : ndarray (k, n_elements)
        at.% over the detected elements; NaN for undetected ones.
    kinds : tuple of str
        ``"phase"``, ``"continuum"`` (no detected line) or ``"empty"`` (no counts).
    names : tuple of str
        ``"phase 1 (Fe-Pt)"``, ``"phase 2 (continuum)"``, ``"phase 3 (empty)"``.
    """

    counts: np.ndarray
    line_fraction: np.ndarray
    elements: tuple
    line_counts: np.ndarray
    detection_limit: np.ndarray
    detected: np.ndarray
    composition: np.ndarray
    kinds: tuple
    names: tuple


def phase_name(index: int, kind: str, composition_row, elements) -> str:
    """``"phase <index+1>"`` and what it is: its two main elements, continuum or empty."""
    label = f"phase {index + 1}"
    if kind != KIND_PHASE:
        return f"{label} ({kind})"
    row = np.asarray(composition_row, dtype=float)
    if not len(elements) or not np.any(np.isfinite(row)):
        return label
    order = np.argsort(np.nan_to_num(row, nan=-1.0))[::-1]
    top = [elements[i] for i in order[:2] if np.isfinite(row[i]) and row[i] >= 0.5]
    return f"{label} ({'-'.join(top)})" if top else label


def detected_composition(model, W, detected) -> np.ndarray:
    """at.% of each phase over its detected elements (NaN for the others).

    Parameters
    ----------
    model : espm_cli.physics.EDXModel
    W : ndarray (m, k)
    detected : ndarray of bool (k, n_quantified_elements)

    Returns
    -------
    ndarray (k, n_quantified_elements)
    """
    W = np.asarray(W, dtype=np.float64)
    elements = tuple(model.quantified_elements)
    columns = [list(model.labels).index(symbol) for symbol in elements]
    composition = np.full((W.shape[1], len(elements)), np.nan)
    quantified = detected.any(axis=1)
    if quantified.any():
        # W with the undetected elements' rows at zero: the detected share 100 at.%
        kept = np.zeros_like(W)
        kept[columns] = np.where(detected.T, W[columns], 0.0)
        atomic = model.composition(kept[:, quantified]).atomic_percent
        composition[quantified] = np.where(detected[quantified], atomic, np.nan)
    return composition


def describe_phases(G, W, H, model=None) -> PhaseDescription:
    """Counts, line share, per-element detection, composition and name of each phase.

    Parameters
    ----------
    G : ndarray (n_channels, m)
        The G of the fit (identity columns without physics).
    W : ndarray (m, k)
    H : ndarray (k, n_pixels)
        The abundances.
    model : espm_cli.physics.EDXModel, optional
        The physics model (None: plain NMF; no elements, no composition).

    Returns
    -------
    PhaseDescription
    """
    G, W = np.asarray(G, dtype=np.float64), np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    scale = H.sum(axis=1)
    k = W.shape[1]
    phase_spectra = (G @ W) * scale[None, :]  # (channels, k) counts over the image
    counts = phase_spectra.sum(axis=0)
    total = float(counts.sum())
    empty = (counts < EMPTY_COUNTS) | (counts < EMPTY_SHARE * max(total, 0.0))
    if model is None:
        kinds = tuple(KIND_EMPTY if e else KIND_PHASE for e in empty)
        shape = (k, 0)
        return PhaseDescription(
            counts,
            np.full(k, np.nan),
            (),
            np.zeros(shape),
            np.zeros(shape),
            np.zeros(shape, dtype=bool),
            np.zeros(shape),
            kinds,
            tuple(phase_name(i, kinds[i], [], ()) for i in range(k)),
        )
    elements = tuple(model.quantified_elements)
    columns = [list(model.labels).index(symbol) for symbol in elements]
    element_columns = ~np.asarray(model.continuum_mask)
    line_spectra = (G[:, element_columns] @ W[element_columns]) * scale[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        line_fraction = np.where(counts > 0, line_spectra.sum(axis=0) / counts, np.nan)
    line_counts = np.zeros((k, len(elements)))
    limit = np.zeros((k, len(elements)))
    GW = G @ W
    per_pixel = GW.sum(axis=0)[:, None] * H  # (k, pixels): each phase's counts in each pixel
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nan_to_num(per_pixel / per_pixel.sum(axis=0, keepdims=True))
    for j, column in enumerate(columns):
        g = G[:, column]
        window = g >= LINE_WINDOW_FRACTION * g.max() if g.max() > 0 else np.zeros(g.size, bool)
        line_counts[:, j] = g[window].sum() * W[column] * scale
        in_window = GW[window].sum(axis=0) @ H  # (pixels,): all modelled counts there
        others = np.clip(share @ in_window - line_counts[:, j], 0.0, None)
        limit[:, j] = np.maximum(DETECTION_SIGMA * np.sqrt(others), MIN_LINE_COUNTS)
    detected = (line_counts > limit) & ~empty[:, None]
    composition = detected_composition(model, W, detected)
    quantified = detected.any(axis=1)
    kinds = tuple(
        KIND_EMPTY if empty[i] else (KIND_PHASE if quantified[i] else KIND_CONTINUUM) for i in range(k)
    )
    names = tuple(phase_name(i, kinds[i], composition[i], elements) for i in range(k))
    return PhaseDescription(
        counts, line_fraction, elements, line_counts, limit, detected, composition, kinds, names
    )
