"""Load an espm_cli result file (HDF5) back into hyperspy signals.

The file is read by :func:`espm_cli.io.read_result` (schema in the README / DESIGN.md): ``maps``
(k, ny, nx), ``spectra`` (k, n_channels), ``energy`` (keV), ``W``, ``G_labels``,
``composition`` with ``elements``, and the root attributes ``acquisition`` (JSON),
``pixel_size`` and ``pixel_unit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .composition_table import CompositionTable
from .signals import SEM_SIGNAL_TYPE, TEM_SIGNAL_TYPE

if TYPE_CHECKING:
    from espm_cli.io import DecompositionResult


@dataclasses.dataclass
class ResultSignals:
    """A result file as hyperspy objects.

    Attributes
    ----------
    maps : hyperspy.signals.Signal2D
        Abundance maps, navigation axis ``phase`` (k) and the image's x/y axes
        (pixel size and unit as recorded by the run).
    spectra : EspmCliEDSTEMSpectrum or EspmCliEDSSEMSpectrum
        Phase spectra (counts per pixel), navigation axis ``phase`` and the
        energy axis in keV; the microscope and detector parameters of the run, the
        elements and their X-ray lines in the metadata (exspy's
        ``get_lines_intensity``, ``quantification``, ``plot(xray_lines=True)`` work).
    composition : CompositionTable
        Atomic percent per phase.
    W : numpy.ndarray of shape (m, k)
    G_labels : tuple of str
    attributes : dict
        The file's root attributes (run configuration, versions, input path, ...).
    """

    maps: object
    spectra: object
    composition: CompositionTable
    W: np.ndarray
    G_labels: tuple
    attributes: dict


#: Acquisition keys of a result file -> ``set_microscope_parameters`` arguments.
_MICROSCOPE_PARAMETERS = {
    "beam_energy_keV": "beam_energy",
    "elevation_deg": "elevation_angle",
    "azimuth_deg": "azimuth_angle",
    "tilt_deg": "tilt_stage",
    "mnka_fwhm_eV": "energy_resolution_MnKa",
}


def set_eds_metadata(signal: Any, acquisition: Mapping[str, Any], elements: Sequence[str]) -> None:
    """The microscope, detector and Sample metadata exspy's EDS methods read.

    Parameters
    ----------
    signal : an EDS spectrum signal
    acquisition : dict
        ``beam_energy_keV``, ``elevation_deg``, ... (None or absent: left unset).
    elements : sequence of str
        Set as ``Sample.elements``, with each element's main X-ray line in
        ``Sample.xray_lines`` (exspy's choice for the beam energy).
    """
    values = {
        argument: float(acquisition[key])
        for key, argument in _MICROSCOPE_PARAMETERS.items()
        if acquisition.get(key) is not None
    }
    if values:
        signal.set_microscope_parameters(**values, display=False)
    if acquisition.get("thickness_nm") is not None:
        signal.metadata.set_item("Sample.thickness", float(acquisition["thickness_nm"]))
    if acquisition.get("density_g_cm3") is not None:
        signal.metadata.set_item("Sample.density", float(acquisition["density_g_cm3"]))
    if elements:
        signal.set_elements(list(elements))
        if "beam_energy" in values:
            signal.add_lines()


def phase_spectra_signal(result: DecompositionResult) -> Any:
    """A result's phase spectra as an EDS signal (phase | energy) with its metadata.

    Parameters
    ----------
    result : espm_cli.io.DecompositionResult

    Returns
    -------
    EspmCliEDSTEMSpectrum or EspmCliEDSSEMSpectrum
        Counts per pixel; the microscope, detector, elements and X-ray lines set.
    """
    import hyperspy.api as hs

    energy = np.asarray(result.energy)
    acquisition = result.acquisition or {}
    energy_scale = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
    energy_axis = {
        "name": "Energy",
        "size": energy.size,
        "offset": float(energy[0]),
        "scale": energy_scale,
        "units": "keV",
    }
    phase_axis = {"name": "phase", "size": result.n_components, "navigate": True}
    signal = hs.signals.Signal1D(np.asarray(result.spectra), axes=[phase_axis, energy_axis])
    signal.metadata.General.title = "phase spectra"
    microscope = str(acquisition.get("microscope") or "TEM").upper()
    signal.set_signal_type(SEM_SIGNAL_TYPE if microscope == "SEM" else TEM_SIGNAL_TYPE)
    set_eds_metadata(signal, acquisition, result.elements)
    return signal


def load_result(path: str | Path) -> ResultSignals:
    """Read an ``espm decompose`` result file into hyperspy signals.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file written by the command line (or the batch runner).

    Returns
    -------
    ResultSignals
        ``.maps`` (Signal2D stack), ``.spectra`` (EDS spectra), ``.composition``,
        ``.W``, ``.G_labels``, ``.attributes``.
    """
    import hyperspy.api as hs

    from espm_cli.io import read_result, read_root_attributes

    result = read_result(path)
    maps = result.maps
    n_phases = maps.shape[0]
    pixel_size = result.pixel_size
    pixel_unit = result.pixel_unit or None
    scale = float(pixel_size) if pixel_size is not None else 1.0
    image_axes = [
        {
            "name": name,
            "size": size,
            "scale": scale,
            "offset": 0.0,
            "units": pixel_unit if pixel_size is not None else None,
        }
        for name, size in (("y", maps.shape[1]), ("x", maps.shape[2]))
    ]
    phase_axis = {"name": "phase", "size": n_phases, "navigate": True}
    maps_signal = hs.signals.Signal2D(maps, axes=[phase_axis, *image_axes])
    maps_signal.metadata.General.title = "abundance maps"

    spectra_signal = phase_spectra_signal(result)

    return ResultSignals(
        maps=maps_signal,
        spectra=spectra_signal,
        composition=CompositionTable.from_array(
            tuple(result.elements), result.composition, phases=result.phase_names or None
        ),
        W=result.W,
        G_labels=tuple(result.G_labels),
        attributes=read_root_attributes(path),
    )
