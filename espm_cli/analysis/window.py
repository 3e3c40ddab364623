"""The fit window: which channels a physics fit uses, and the model on them."""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np

from .defaults import DEFAULT_LOW_KEV
from .model import build_model
from .notices import EspmWarning

logger = logging.getLogger(__name__)

#: Warn when the fit window holds less than this share of the counts.
MIN_WINDOW_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class FitWindow:
    """Channels ``[start, stop)`` of the spectrum's axis that the fit uses.

    Attributes
    ----------
    start, stop : int
        Channel slice of the full axis.
    axis : espm_cli.physics.EnergyAxis
        The energy axis of the window (the model's axis).
    size : int
        Channels of the full axis.
    """

    start: int
    stop: int
    axis: object
    size: int

    @property
    def is_whole_axis(self) -> bool:
        return (self.start, self.stop) == (0, self.size)

    def signal_mask(self) -> np.ndarray | None:
        """Boolean (size,): True outside the window (hyperspy's ``signal_mask``); None if none."""
        if self.is_whole_axis:
            return None
        mask = np.ones(self.size, dtype=bool)
        mask[self.start : self.stop] = False
        return mask


def _sub_axis(axis, start, stop):
    from ..physics import EnergyAxis

    return EnergyAxis(axis.offset_keV + start * axis.scale_keV, axis.scale_keV, stop - start)


def choose_fit_window(
    energy_axis,
    acquisition,
    *,
    physics=True,
    cut_low=True,
    elements=None,
    ignored_elements=(),
    source="the data",
    **model_options,
):
    """The fit window and the model on it (the same for every front end).

    Physics fits start at ``DEFAULT_LOW_KEV`` and end at the beam energy (unless
    ``cut_low`` is False: the user chose the energy range), then leave out leading and
    trailing channels where G is zero (no line or continuum can explain counts there).

    Parameters
    ----------
    energy_axis : espm_cli.physics.EnergyAxis or object with offset, scale, size
    acquisition : espm_cli.io.AcquisitionParameters
    physics : bool
        False: plain NMF (G = identity) on the whole axis; the model is None.
    cut_low : bool
        Apply the default low cut and the beam-energy cut.
    elements, ignored_elements, source, **model_options
        Passed to :func:`espm_cli.analysis.build_model`.

    Returns
    -------
    (FitWindow, EDXModel or None)
    """
    from ..physics import EnergyAxis

    axis = energy_axis if isinstance(energy_axis, EnergyAxis) else EnergyAxis.from_axis(energy_axis)
    whole = FitWindow(0, axis.size, axis, axis.size)
    if not physics:
        return whole, None
    start, stop = 0, axis.size
    if cut_low:
        energies = axis.energies
        keep = energies >= DEFAULT_LOW_KEV
        if acquisition.beam_energy_keV is not None:
            keep &= energies <= float(acquisition.beam_energy_keV)
        channels = np.flatnonzero(keep)
        if channels.size >= 2:
            start, stop = int(channels[0]), int(channels[-1]) + 1

    def model_on(first, last):
        return build_model(
            _sub_axis(axis, first, last),
            acquisition,
            elements=elements,
            ignored_elements=ignored_elements,
            source=source,
            spectrum_high_keV=axis.high_keV,
            **model_options,
        )

    with warnings.catch_warnings(record=True) as first_warnings:
        warnings.simplefilter("always")
        model = model_on(start, stop)
    covered = np.flatnonzero(np.asarray(model.G).sum(axis=1) > 0)
    if covered.size >= 2 and (covered[0] > 0 or covered[-1] < stop - start - 1):
        start, stop = start + int(covered[0]), start + int(covered[-1]) + 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EspmWarning)  # told once, below
            model = model_on(start, stop)
    for caught in first_warnings:
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
    window = FitWindow(start, stop, model.energy_axis, axis.size)
    if not window.is_whole_axis:
        logger.info("fitting %.3f to %.3f keV", window.axis.low_keV, window.axis.high_keV)
    return window, model


def check_window_share(channel_totals, window: FitWindow, n_pixels: int = 1) -> float:
    """Share of the counts inside the window; warn (EspmWarning) when it is small.

    Parameters
    ----------
    channel_totals : array of shape (window.size,)
        Counts per channel over all pixels, on the full axis.
    window : FitWindow
    n_pixels : int
        Pixels of the image (for the counts per pixel in the message).

    Returns
    -------
    float
    """
    totals = np.asarray(channel_totals, dtype=np.float64)
    total = float(totals.sum())
    if total <= 0:
        return float("nan")
    inside = float(totals[window.start : window.stop].sum())
    share = inside / total
    if share < MIN_WINDOW_SHARE:
        below = float(totals[: window.start].sum()) / total
        where = (
            f"{100 * below:.1f} % lie below {window.axis.low_keV:.3g} keV, in the "
            "detector's zero peak and noise"
            if below > 0.5 * (1 - share)
            else "the rest lie outside it"
        )
        warnings.warn(
            f"the fit window {window.axis.low_keV:.3g}-{window.axis.high_keV:.3g} keV holds "
            f"only {100 * share:.2g} % of the counts ({where}): the fit sees "
            f"{inside / max(1, n_pixels):.3g} counts per pixel",
            EspmWarning,
            stacklevel=2,
        )
    return share
