"""Acquisition -> physics model: the one function both front ends build G with."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .notices import EspmWarning

if TYPE_CHECKING:
    from ..io import AcquisitionParameters
    from ..physics import EDXModel

#: Options of :func:`build_model` that go to the Detector, the Sample or the EDXModel
#: (besides what the acquisition parameters give).
DETECTOR_OPTIONS = ("efficiency_file", "window_layers", "dead_layer_um", "crystal_thickness_um")
SAMPLE_OPTIONS = ("composition", "bulk")
MODEL_OPTIONS = ("kfactors",)
MODEL_BUILD_OPTIONS = (*DETECTOR_OPTIONS, *SAMPLE_OPTIONS, *MODEL_OPTIONS)


class MissingAcquisitionError(ValueError):
    """The metadata lack something the model cannot be built without.

    Attributes
    ----------
    parameter : str
        ``"elements"`` or ``"beam_energy_keV"``.
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


def build_model(
    energy_axis: Any,
    acquisition: AcquisitionParameters,
    *,
    elements: Sequence[str] | None = None,
    ignored_elements: Sequence[str] = (),
    source: str = "the data",
    spectrum_high_keV: float | None = None,
    **options: Any,
) -> EDXModel:
    """The :class:`espm_cli.physics.EDXModel` of a spectrum image.

    One set of rules for the command line, hyperspy and the simulator:

    - elements: ``elements`` when given (kept as given: the physics refuses one without
      a line); otherwise the acquisition's, leaving out, with a warning, those without a
      line on the axis; none usable is an error;
    - thickness without density: a warning and no self-absorption (the thickness alone
      cannot give a mass thickness);
    - an SEM specimen without a film thickness: bulk self-absorption.

    Parameters
    ----------
    energy_axis : espm_cli.physics.EnergyAxis or object with offset, scale, size
        The channels the model covers (the fit window).
    acquisition : espm_cli.io.AcquisitionParameters
        From the metadata, with the user's values already put in
        (``acquisition.replace(...)``).
    elements : sequence of str, optional
        Elements chosen by the user.
    ignored_elements : sequence of str
        Modelled but left out of the compositions.
    source : str
        What the data are called in messages (a file name).
    spectrum_high_keV : float, optional
        Top of the recorded spectrum when ``energy_axis`` is a window of it (cut at the
        beam energy): a metadata element with lines up there is named as left out
        because of the beam energy, not for want of a line on the axis.
    **options
        ``efficiency_file``, ``window_layers``, ``dead_layer_um``,
        ``crystal_thickness_um`` (detector), ``composition``, ``bulk`` (sample),
        ``kfactors`` (model).

    Returns
    -------
    espm_cli.physics.EDXModel

    Raises
    ------
    MissingAcquisitionError
        No elements or no beam energy.
    ValueError
        An option the physics refuses, or an unknown option.
    """
    from ..physics import Detector, EDXModel, EnergyAxis, Sample, elements_with_lines

    unknown = sorted(set(options) - set(MODEL_BUILD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown model option {unknown[0]!r}; allowed: {', '.join(MODEL_BUILD_OPTIONS)}")
    axis = energy_axis if isinstance(energy_axis, EnergyAxis) else EnergyAxis.from_axis(energy_axis)
    chosen = None if elements is None else [str(symbol).strip() for symbol in elements]
    symbols = list(chosen) if chosen is not None else list(acquisition.elements)
    if not symbols:
        raise MissingAcquisitionError(
            "elements",
            f"{source} lists no elements in its metadata (elements is empty); name them: "
            "--elements Fe,Pt,O on the command line, elements=['Fe', 'Pt', 'O'] in hyperspy "
            "(or --no-physics)",
        )
    if acquisition.beam_energy_keV is None:
        raise MissingAcquisitionError(
            "beam_energy_keV",
            f"{source} has no beam energy in its metadata; give --beam-energy (keV) on the "
            "command line, beam_energy_keV=... in hyperspy",
        )
    beam = float(acquisition.beam_energy_keV)
    if chosen is None:
        usable = elements_with_lines(axis, symbols, beam)
        dropped = [symbol for symbol in symbols if symbol not in usable]
        window = f"{axis.low_keV:.3g} and {axis.high_keV:.3g} keV"
        above_beam = _beyond_the_beam(dropped, axis, spectrum_high_keV)
        because = (
            f"; the {beam:g} keV beam energy excites none of the X-ray lines of "
            f"{', '.join(above_beam)} on the energy axis (check --beam-energy / "
            "beam_energy_keV)"
            if above_beam
            else ""
        )
        if not usable:
            raise MissingAcquisitionError(
                "elements",
                f"none of the metadata elements ({', '.join(dropped)}) of {source} has an X-ray "
                f"line between {window}{because}; choose the elements (--elements / "
                "elements=[...])",
            )
        others = [symbol for symbol in dropped if symbol not in above_beam]
        if above_beam:
            warnings.warn(
                f"leaving out {', '.join(above_beam)}: the {beam:g} keV beam energy "
                "excites none of their X-ray lines on the energy axis (check "
                "--beam-energy / beam_energy_keV)",
                EspmWarning,
                stacklevel=2,
            )
        if others:
            warnings.warn(
                f"metadata elements {', '.join(others)} have no X-ray line between "
                f"{window} and are left out of the model; name the elements "
                "(--elements / elements=[...]) to choose them yourself",
                EspmWarning,
                stacklevel=2,
            )
        symbols = usable

    detector_args: dict[str, Any] = {
        name: value
        for name, value in (
            ("mnka_fwhm_eV", acquisition.mnka_fwhm_eV),
            ("elevation_deg", acquisition.elevation_deg),
            ("azimuth_deg", acquisition.azimuth_deg),
        )
        if value is not None
    }
    detector_args.update({name: options[name] for name in DETECTOR_OPTIONS if name in options})
    sample_args: dict[str, Any] = {"tilt_deg": acquisition.tilt_deg or 0.0}
    sample_args.update({name: options[name] for name in SAMPLE_OPTIONS if name in options})
    if acquisition.thickness_nm and acquisition.density_g_cm3:
        sample_args.update(thickness_nm=acquisition.thickness_nm, density_g_cm3=acquisition.density_g_cm3)
    elif acquisition.thickness_nm:
        warnings.warn(
            f"thickness {acquisition.thickness_nm:g} nm given without a density: no "
            "self-absorption correction (give --density / density_g_cm3)",
            EspmWarning,
            stacklevel=2,
        )
    elif "bulk" not in sample_args and acquisition.bulk_specimen:
        sample_args["bulk"] = True
    return EDXModel(
        axis,
        symbols,
        beam,
        detector=Detector(**detector_args),
        sample=Sample(**sample_args),
        ignored_elements=tuple(ignored_elements or ()),
        **{name: options[name] for name in MODEL_OPTIONS if name in options},
    )


def _beyond_the_beam(dropped, axis, spectrum_high_keV):
    """Of ``dropped``, the elements a higher beam energy would give lines on the spectrum.

    Their lines lie between the axis' low edge and the top of the spectrum (a wrong
    beam energy in the options or the metadata is the usual cause).
    """
    from ..physics.model import MAX_BEAM_ENERGY_KEV
    from ..physics.xray_lines import element_lines

    high = max(axis.high_keV, spectrum_high_keV or axis.high_keV)
    return [
        symbol for symbol in dropped if element_lines(symbol.strip(), MAX_BEAM_ENERGY_KEV, axis.low_keV, high)
    ]
