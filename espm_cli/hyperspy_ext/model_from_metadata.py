"""Build the physics model (G) of a hyperspy EDS signal from its metadata."""

from __future__ import annotations

import warnings

#: Acquisition values that ``build_G`` reads from the metadata and that a keyword
#: overrides (name -> where it goes: "model", "detector" or "sample").
ACQUISITION_OVERRIDES = {
    "beam_energy_keV": "model",
    "mnka_fwhm_eV": "detector",
    "elevation_deg": "detector",
    "azimuth_deg": "detector",
    "tilt_deg": "sample",
    "thickness_nm": "sample",
    "density_g_cm3": "sample",
}
#: Further EDXModel / Detector options that only come from keywords.
MODEL_OPTIONS = ("ignored_elements", "kfactors")
DETECTOR_OPTIONS = ("efficiency_file", "window_layers", "dead_layer_um",
                    "crystal_thickness_um")
SAMPLE_OPTIONS = ("composition", "bulk")
ALLOWED_OVERRIDES = (*ACQUISITION_OVERRIDES, *MODEL_OPTIONS, *DETECTOR_OPTIONS,
                     *SAMPLE_OPTIONS)


def parse_elements(elements):
    """Element symbols from a sequence or a comma-separated string.

    Parameters
    ----------
    elements : str or sequence of str or None

    Returns
    -------
    tuple of str or None
        None when ``elements`` is None.
    """
    if elements is None:
        return None
    if isinstance(elements, str):
        elements = elements.split(",")
    symbols = tuple(str(symbol).strip() for symbol in elements if str(symbol).strip())
    if not symbols:
        raise ValueError(
            f"elements={elements!r} is not allowed; give at least one element symbol, "
            "e.g. ['Fe', 'Pt', 'O']."
        )
    return symbols


def model_from_signal(signal, elements=None, **overrides):
    """An :class:`espm_cli.physics.EDXModel` for ``signal``.

    Parameters
    ----------
    signal : hyperspy signal with one signal axis (the energy axis)
        Its metadata provide the elements and acquisition parameters.
    elements : str or sequence of str, optional
        Elements of the model; the metadata's ``Sample.elements`` by default.
    **overrides
        Values that replace (or supply) what the metadata hold; allowed names are
        listed in ``ALLOWED_OVERRIDES``.

    Returns
    -------
    espm_cli.physics.EDXModel
    """
    from espm_cli.io.acquisition import acquisition_from_metadata
    from espm_cli.physics import Detector, EDXModel, EnergyAxis, Sample

    unknown = sorted(set(overrides) - set(ALLOWED_OVERRIDES))
    if unknown:
        raise ValueError(
            f"build_G got unknown keyword {unknown[0]!r}; allowed: "
            f"{', '.join(ALLOWED_OVERRIDES)}."
        )
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"signal has {signal.axes_manager.signal_dimension} signal axes; build_G needs "
            "a spectrum image with exactly one (energy) signal axis."
        )
    acquisition = acquisition_from_metadata(
        signal.metadata, str(signal.metadata.get_item("Signal.signal_type", "")))
    chosen = parse_elements(elements)
    symbols = chosen or acquisition.elements
    if not symbols:
        raise ValueError(
            "elements is empty: the metadata list no elements (Sample.elements); pass "
            "elements=['Fe', 'Pt', ...] or call s.add_elements([...]) first."
        )
    values = {name: getattr(acquisition, name) for name in ACQUISITION_OVERRIDES}
    values.update({name: overrides[name] for name in ACQUISITION_OVERRIDES
                   if name in overrides})
    if values["beam_energy_keV"] is None:
        raise ValueError(
            "beam_energy_keV is None: the metadata hold no beam energy; pass "
            "build_G(beam_energy_keV=...) or set it with s.set_microscope_parameters()."
        )
    beam_energy_keV = float(values["beam_energy_keV"])
    energy_axis = EnergyAxis.from_axis(signal.axes_manager.signal_axes[0])
    if chosen is None:
        symbols = _drop_elements_without_lines(symbols, beam_energy_keV, energy_axis)

    def options(group, extra_names):
        from_values = {name: value for name, value in values.items()
                       if ACQUISITION_OVERRIDES[name] == group and value is not None}
        return {**from_values, **{n: overrides[n] for n in extra_names if n in overrides}}

    detector = Detector(**options("detector", DETECTOR_OPTIONS))
    sample_options = options("sample", SAMPLE_OPTIONS)
    if "bulk" not in sample_options and "thickness_nm" not in sample_options:
        sample_options["bulk"] = acquisition.bulk_specimen  # SEM: bulk, TEM: thin film
    sample = Sample(**sample_options)
    return EDXModel(energy_axis, list(symbols), beam_energy_keV,
                    detector=detector, sample=sample,
                    **{n: overrides[n] for n in MODEL_OPTIONS if n in overrides})


def _drop_elements_without_lines(symbols, beam_energy_keV, energy_axis):
    """Leave out metadata elements with no X-ray line on the energy axis, with a warning.

    Files list elements the user never chose for this axis (e.g. O on an axis that
    starts at 0.83 keV); an element the user names explicitly is kept, and the
    physics refuses it with a clear error instead.
    """
    from espm_cli.physics.xray_lines import element_lines

    kept, dropped = [], []
    for symbol in symbols:
        try:
            has_lines = bool(element_lines(symbol, beam_energy_keV, energy_axis.low_keV,
                                           energy_axis.high_keV))
        except ValueError:
            has_lines = True  # let the model report the bad symbol itself
        (kept if has_lines else dropped).append(symbol)
    if dropped and not kept:
        raise ValueError(
            f"none of the metadata elements ({', '.join(dropped)}) has an X-ray line "
            f"between {energy_axis.low_keV:.3g} and {energy_axis.high_keV:.3g} keV; pass "
            "elements=[...] to choose the elements yourself."
        )
    if dropped:
        warnings.warn(
            f"metadata elements {', '.join(dropped)} have no X-ray line between "
            f"{energy_axis.low_keV:.3g} and {energy_axis.high_keV:.3g} keV and are left "
            "out of the model; pass elements=[...] to choose the elements yourself.",
            UserWarning, stacklevel=4)
    return tuple(kept)

