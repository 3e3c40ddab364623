"""Build the physics model (G) of a hyperspy EDS signal from its metadata.

The rules (elements, absorption, bulk SEM specimens) are the workflow's
(:func:`espm_cli.analysis.build_model`); this module only reads the signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from espm_cli.analysis.model import MODEL_BUILD_OPTIONS

if TYPE_CHECKING:
    from espm_cli.io import AcquisitionParameters
    from espm_cli.physics import EDXModel

#: Acquisition values that ``build_G`` reads from the metadata and that a keyword
#: overrides.
ACQUISITION_OVERRIDES = (
    "beam_energy_keV",
    "mnka_fwhm_eV",
    "elevation_deg",
    "azimuth_deg",
    "tilt_deg",
    "thickness_nm",
    "density_g_cm3",
)
#: Further model options that only come from keywords.
ALLOWED_OVERRIDES = (*ACQUISITION_OVERRIDES, "ignored_elements", *MODEL_BUILD_OPTIONS)


def parse_elements(elements: str | Sequence[str] | None) -> tuple[str, ...] | None:
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
            f"elements={elements!r} is not allowed; give at least one element symbol, e.g. ['Fe', 'Pt', 'O']."
        )
    return symbols


def signal_acquisition(signal: Any, **overrides: Any) -> AcquisitionParameters:
    """The signal's acquisition parameters (metadata) with ``overrides`` put in."""
    from espm_cli.io.acquisition import acquisition_from_metadata

    acquisition = acquisition_from_metadata(
        signal.metadata, str(signal.metadata.get_item("Signal.signal_type", ""))
    )
    return acquisition.replace(
        **{name: overrides[name] for name in ACQUISITION_OVERRIDES if name in overrides}
    )


def check_overrides(signal: Any, overrides: Mapping[str, Any]) -> None:
    """Refuse unknown keywords and signals that are not spectrum images."""
    unknown = sorted(set(overrides) - set(ALLOWED_OVERRIDES))
    if unknown:
        raise ValueError(
            f"build_G got unknown keyword {unknown[0]!r}; allowed: {', '.join(ALLOWED_OVERRIDES)}."
        )
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"signal has {signal.axes_manager.signal_dimension} signal axes; build_G needs "
            "a spectrum image with exactly one (energy) signal axis."
        )


def model_options(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords that go to :func:`espm_cli.analysis.build_model` as options."""
    return {name: overrides[name] for name in MODEL_BUILD_OPTIONS if name in overrides}


def model_from_signal(signal: Any, elements: str | Sequence[str] | None = None, **overrides: Any) -> EDXModel:
    """An :class:`espm_cli.physics.EDXModel` for ``signal``, on its whole energy axis.

    Parameters
    ----------
    signal : hyperspy signal with one signal axis (the energy axis)
        Its metadata provide the elements and acquisition parameters.
    elements : str or sequence of str, optional
        Elements of the model; the metadata's ``Sample.elements`` by default (those
        without a line on the axis are left out, with a warning).
    **overrides
        Values that replace (or supply) what the metadata hold; allowed names are
        listed in ``ALLOWED_OVERRIDES``.

    Returns
    -------
    espm_cli.physics.EDXModel
    """
    from espm_cli.analysis import build_model
    from espm_cli.physics import EnergyAxis

    check_overrides(signal, overrides)
    return build_model(
        EnergyAxis.from_axis(signal.axes_manager.signal_axes[0]),
        signal_acquisition(signal, **overrides),
        elements=parse_elements(elements),
        ignored_elements=overrides.get("ignored_elements", ()),
        source="the signal",
        **model_options(overrides),
    )
