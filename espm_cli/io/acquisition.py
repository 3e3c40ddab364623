"""Acquisition parameters read from a spectrum image's metadata.

hyperspy/exspy keep the acquisition parameters under
``Acquisition_instrument.{TEM,SEM}`` and the elements under ``Sample``. This module
turns that tree into one flat, typed record and remembers which values the file did
not provide, so that the command line can say what the user must supply.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: Parameters that decompose needs, with the metadata path (below the
#: microscope node, TEM or SEM) where hyperspy stores them.
_INSTRUMENT_PATHS = {
    "beam_energy_keV": "beam_energy",
    "elevation_deg": "Detector.EDS.elevation_angle",
    "azimuth_deg": "Detector.EDS.azimuth_angle",
    "tilt_deg": "Stage.tilt_alpha",
    "mnka_fwhm_eV": "Detector.EDS.energy_resolution_MnKa",
    "live_time_s": "Detector.EDS.live_time",
}
_SAMPLE_PATHS = {
    "thickness_nm": "Sample.thickness",
    "density_g_cm3": "Sample.density",
}

#: Which parameters decompose cannot run without (when physics is on).
REQUIRED_PARAMETERS = ("elements", "beam_energy_keV")


@dataclasses.dataclass(frozen=True)
class AcquisitionParameters:
    """Acquisition parameters of a spectrum image; ``None`` where unknown.

    Attributes
    ----------
    elements : tuple of str
        Element symbols listed in the metadata (may be empty).
    beam_energy_keV, elevation_deg, azimuth_deg, tilt_deg, mnka_fwhm_eV : float or None
        Beam energy, detector elevation and azimuth, stage tilt and the detector
        resolution (FWHM at Mn Kα).
    thickness_nm, density_g_cm3 : float or None
        Sample thickness and density when the file records them.
    live_time_s : float or None
        Acquisition live time.
    microscope : str or None
        ``"TEM"`` or ``"SEM"`` (from the metadata tree or the signal type).
    """

    elements: tuple[str, ...] = ()
    beam_energy_keV: float | None = None
    elevation_deg: float | None = None
    azimuth_deg: float | None = None
    tilt_deg: float | None = None
    mnka_fwhm_eV: float | None = None
    thickness_nm: float | None = None
    density_g_cm3: float | None = None
    live_time_s: float | None = None
    microscope: str | None = None

    def missing(self) -> list[str]:
        """Names of the parameters the metadata did not provide."""
        names = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or (field.name == "elements" and not value):
                names.append(field.name)
        return names

    @property
    def bulk_specimen(self) -> bool:
        """Whether to model the specimen as bulk (thick) for self-absorption.

        An SEM specimen with no recorded film thickness is bulk: its X-rays come from
        the whole interaction volume, and bulk absorption (``Sample(bulk=True)``)
        lowers the soft lines and the low-energy continuum accordingly. TEM specimens
        are thin films (absorption only when thickness and density are known).
        """
        return self.microscope == "SEM" and self.thickness_nm is None

    def replace(self, **changes: Any) -> AcquisitionParameters:
        """Return a copy with the given (non-None) values replaced."""
        changes = {name: value for name, value in changes.items() if value is not None}
        if "elements" in changes:
            changes["elements"] = tuple(changes["elements"])
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (elements as a list), for YAML and HDF5 attributes."""
        out = dataclasses.asdict(self)
        out["elements"] = list(self.elements)
        return out


def _as_float(value: Any) -> float | None:
    """A finite Python float, or None for a missing/non-numeric/non-finite value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def acquisition_from_metadata(metadata: Any, signal_type: str = "") -> AcquisitionParameters:
    """Read the acquisition parameters from a hyperspy metadata tree.

    Parameters
    ----------
    metadata : hyperspy.misc.utils.DictionaryTreeBrowser
        ``signal.metadata``.
    signal_type : str, optional
        The signal type (``"EDS_TEM"``, ``"EDS_SEM"``), used when the tree has no
        microscope node.

    Returns
    -------
    AcquisitionParameters
    """
    microscope = None
    for candidate in ("TEM", "SEM"):
        if metadata.has_item(f"Acquisition_instrument.{candidate}"):
            microscope = candidate
            break
    if microscope is None and signal_type.upper().endswith(("TEM", "SEM")):
        microscope = signal_type.upper()[-3:]

    values: dict[str, Any] = {"microscope": microscope}
    if microscope is not None:
        root = f"Acquisition_instrument.{microscope}."
        for name, path in _INSTRUMENT_PATHS.items():
            values[name] = _as_float(metadata.get_item(root + path))
    for name, path in _SAMPLE_PATHS.items():
        values[name] = _as_float(metadata.get_item(path))
    elements = metadata.get_item("Sample.elements")
    if elements is not None:
        values["elements"] = tuple(str(symbol) for symbol in elements)
    return AcquisitionParameters(**values)
