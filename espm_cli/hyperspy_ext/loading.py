"""Open a spectrum image as an espm_cli signal (``espm_cli.load``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .signals import SEM_SIGNAL_TYPE, TEM_SIGNAL_TYPE


def _is_spectrum_image(signal):
    return signal.axes_manager.signal_dimension == 1


def _pick_spectrum_image(loaded, path):
    """The EDS spectrum image among what hyperspy loaded.

    A .bcf also holds images, a Velox .emd images and summed spectra.
    """
    candidates = loaded if isinstance(loaded, list) else [loaded]
    spectra = [signal for signal in candidates if _is_spectrum_image(signal)]
    if not spectra:
        raise ValueError(
            f"path={str(path)!r} holds no spectrum image (no signal with one energy "
            "axis); espm_cli.load needs an EDX spectrum image."
        )
    eds = [s for s in spectra if str(s.metadata.get_item("Signal.signal_type", "")).startswith("EDS")]
    # Velox files also hold summed spectra (no navigation axes): take the image
    return max(eds or spectra, key=lambda s: s.axes_manager.navigation_size)


def _is_sem(signal):
    signal_type = str(signal.metadata.get_item("Signal.signal_type", ""))
    if "SEM" in signal_type:
        return True
    metadata = signal.metadata
    return metadata.has_item("Acquisition_instrument.SEM") and not metadata.has_item(
        "Acquisition_instrument.TEM"
    )


def load(path: str | Path, *, signal_type: str | None = None, **load_options: Any) -> Any:
    """Load a spectrum image with hyperspy and give it espm_cli's signal type.

    Parameters
    ----------
    path : str or pathlib.Path
        Any file hyperspy reads (.bcf, .emd, .pts, .hspy, ...). When the file holds
        several signals, the EDS spectrum image is taken.
    signal_type : {"EDS_espm_cli", "EDS_SEM_espm_cli"}, optional
        Force the type; by default SEM data get ``"EDS_SEM_espm_cli"`` and
        everything else ``"EDS_espm_cli"``.
    **load_options
        Passed to ``hyperspy.api.load`` (``lazy=True``, ``rebin_energy=...``, ...).

    Returns
    -------
    EspmCliEDSTEMSpectrum or EspmCliEDSSEMSpectrum (or their lazy versions)
    """
    import hyperspy.api as hs

    allowed = (TEM_SIGNAL_TYPE, SEM_SIGNAL_TYPE)
    if signal_type is not None and signal_type not in allowed:
        raise ValueError(f"signal_type={signal_type!r} is not allowed; use one of {allowed} or None.")
    signal = _pick_spectrum_image(hs.load(path, **load_options), path)
    if signal_type is None:
        signal_type = SEM_SIGNAL_TYPE if _is_sem(signal) else TEM_SIGNAL_TYPE
    signal.set_signal_type(signal_type)
    return signal
