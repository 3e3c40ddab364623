"""The EDX model: the G matrix (channels x (elements + 2 continuum columns)).

Column scaling (so that W counts atoms)
---------------------------------------
Element column j:  G[:, j] = c_j * sum_lines  w_line * eps(E_line) * A(E_line) * g_line
with w_line = sigma_eff(E0) * omega * R in units of 1e-22 cm^2, eps the detector efficiency,
A the self-absorption (thin film, or bulk), g_line the unit-area Gaussian integrated over
each channel and c_j = 1 unless k-factors are given. Expected counts per channel are then proportional to
G[:, j] times the number of atoms of element j in the pixel (times dose and solid angle),
so W's element rows are proportional to numbers of atoms and the composition is a plain
normalisation of those rows. The two continuum columns are the raw shapes times
efficiency and absorption, scaled to unit sum over the channels (their W rows are not
numbers of atoms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .composition import Composition, composition_from_amounts
from .continuum import CONTINUUM_LABELS, continuum_shapes
from .cross_sections import PUBLISHED_EXPONENT
from .detector import Detector, gaussian_channel_areas
from .energy_axis import EnergyAxis
from .errors import BeamEnergyError, NoLinesInRangeError, PhysicsInputError
from .sample import Sample, bulk_absorption, take_off_angle_deg, thin_film_absorption
from .xray_lines import XRayLine, atomic_number, atomic_weight, element_lines

__all__ = ["EDXModel", "elements_with_lines"]

MAX_BEAM_ENERGY_KEV = 1000.0


class EDXModel:
    """Physics model of an EDX spectrum: one column per element plus two continuum columns.

    Parameters
    ----------
    energy_axis : EnergyAxis or object with offset, scale, size
        The spectrum's energy axis (keV; hyperspy's DataAxis is accepted).
    elements : sequence of str
        Element symbols, e.g. ``["Fe", "Pt"]``.
    beam_energy_keV : float
        Incident electron energy, keV.
    detector : Detector, optional
        Defaults to ``Detector()`` (thin-window SDD, 130 eV at Mn Ka, 35 deg elevation).
    sample : Sample, optional
        Defaults to ``Sample()`` (no self-absorption).
    ignored_elements : sequence of str
        Elements modelled in G but left out of the composition (e.g. Cu from the grid).
        Those not in ``elements`` are appended to it.
    kfactors : dict or None
        Measured Cliff-Lorimer k-factors ``{symbol: k}`` relative to the first key (its
        value is divided out, so ``{"Fe": 1.0, "Pt": 2.1}`` and ``{"Fe": 2.0, "Pt": 4.2}``
        mean the same). Convention: C_A / C_R = k_A I_A / I_R with C weight fractions and I
        the element's total modelled intensity (column sum). The given elements' columns
        are rescaled so that the model's k-factors equal the measured ones; the reference
        column and elements not in the dict are unchanged.
    cross_section_exponent : float
        Exponent on (1 - beta^2) in Bote-Salvat; +0.25 is the published formula (default),
        -0.25 reproduces espm 1.1.3's numbers.

    Attributes
    ----------
    G : ndarray, shape (n_channels, n_elements + 2)
    labels : list of str
    continuum_mask : ndarray of bool
    elements, ignored_elements : tuple of str
    lines : list of XRayLine
    take_off_angle_deg : float
    absorption_composition : dict
        ``{symbol: atomic fraction}`` used for the sample's attenuation.
    """

    G: np.ndarray
    lines: list[XRayLine]

    def __init__(
        self,
        energy_axis: EnergyAxis | Any,
        elements: Sequence[str],
        beam_energy_keV: float,
        *,
        detector: Detector | None = None,
        sample: Sample | None = None,
        ignored_elements: Sequence[str] = (),
        kfactors: Mapping[str, float] | None = None,
        cross_section_exponent: float = PUBLISHED_EXPONENT,
    ) -> None:
        self.energy_axis = _as_axis(energy_axis)
        self.beam_energy_keV = _check_beam_energy(beam_energy_keV, self.energy_axis)
        self.detector = Detector() if detector is None else detector
        self.sample = Sample() if sample is None else sample
        if not isinstance(self.detector, Detector):
            raise PhysicsInputError(f"detector={detector!r} is not allowed; it must be a Detector.")
        if not isinstance(self.sample, Sample):
            raise PhysicsInputError(f"sample={sample!r} is not allowed; it must be a Sample.")
        self.elements, self.ignored_elements = _check_elements(elements, ignored_elements)
        self.cross_section_exponent = float(cross_section_exponent)
        self.kfactors = None if kfactors is None else dict(kfactors)
        self.take_off_angle_deg = take_off_angle_deg(
            self.detector.elevation_deg, self.sample.tilt_deg, self.detector.azimuth_deg
        )
        self.absorption_composition = (
            self.sample.composition
            if self.sample.composition is not None
            else {symbol: 1.0 / len(self.quantified_elements) for symbol in self.quantified_elements}
        )
        self._build()

    # --- public API -----------------------------------------------------------------
    @property
    def quantified_elements(self) -> tuple[str, ...]:
        """Elements that enter the composition (``elements`` minus ``ignored_elements``)."""
        return tuple(s for s in self.elements if s not in self.ignored_elements)

    @property
    def labels(self) -> list[str]:
        """Column labels: element symbols, then "continuum_kramers", "continuum_correction"."""
        return list(self.elements) + list(CONTINUUM_LABELS)

    @property
    def continuum_mask(self) -> np.ndarray:
        """Boolean (m,): True for the continuum columns."""
        mask = np.zeros(len(self.elements) + len(CONTINUUM_LABELS), dtype=bool)
        mask[len(self.elements) :] = True
        return mask

    @property
    def ignored_mask(self) -> np.ndarray:
        """Boolean (m,): True for ignored element columns."""
        mask = np.zeros(len(self.labels), dtype=bool)
        for i, symbol in enumerate(self.elements):
            mask[i] = symbol in self.ignored_elements
        return mask

    def composition(self, W: Any) -> Composition:
        """Atomic and weight percent per phase from W's element rows.

        Parameters
        ----------
        W : array_like, shape (m, k) or (m,)
            m = ``len(self.labels)``.

        Returns
        -------
        Composition
            ``.elements`` are the non-ignored elements; rows of ``.atomic_percent`` and
            ``.weight_percent`` (k, n_elements) sum to 100.
        """
        W = np.asarray(W, dtype=np.float64)
        if W.ndim == 1:
            W = W[:, None]
        if W.ndim != 2 or W.shape[0] != len(self.labels) or not np.all(np.isfinite(W)):
            raise PhysicsInputError(
                f"W with shape {W.shape} is not allowed; it must be finite with shape "
                f"({len(self.labels)}, k) (rows: {', '.join(self.labels)})."
            )
        rows = [i for i, symbol in enumerate(self.elements) if symbol not in self.ignored_elements]
        return composition_from_amounts(self.quantified_elements, W[rows, :].T)

    def with_composition(self, composition: Mapping[str, float]) -> EDXModel:
        """A new model whose self-absorption uses ``composition`` ({symbol: atomic fraction})."""
        return self._copy_with(sample=replace(self.sample, composition=dict(composition)))

    def with_composition_from_W(self, W: Any, phase_weights: Any = None) -> EDXModel:
        """A new model with absorption for the mean composition of the phases in W.

        Parameters
        ----------
        W : array_like, shape (m, k)
        phase_weights : array_like, shape (k,), optional
            Weights of the phases in the mean (e.g. total abundance); equal by default.
        """
        atomic = self.composition(W).atomic_percent
        weights = (
            np.ones(atomic.shape[0]) if phase_weights is None else np.asarray(phase_weights, dtype=np.float64)
        )
        valid = np.all(np.isfinite(atomic), axis=1) & (weights > 0)
        if weights.shape != (atomic.shape[0],) or not np.any(valid):
            raise PhysicsInputError(
                "phase_weights must have one nonnegative value per phase and W must hold at "
                "least one phase with element content."
            )
        mean = np.average(atomic[valid], axis=0, weights=weights[valid])
        return self.with_composition(dict(zip(self.quantified_elements, mean / 100.0)))

    def __repr__(self) -> str:
        return (
            f"EDXModel({len(self.energy_axis.energies)} channels, elements="
            f"{list(self.elements)}, ignored={list(self.ignored_elements)}, "
            f"E0={self.beam_energy_keV} keV)"
        )

    # --- construction ---------------------------------------------------------------
    def _copy_with(self, **changes):
        arguments = dict(
            detector=self.detector,
            sample=self.sample,
            ignored_elements=self.ignored_elements,
            kfactors=self.kfactors,
            cross_section_exponent=self.cross_section_exponent,
        )
        arguments.update(changes)
        return EDXModel(self.energy_axis, self.elements, self.beam_energy_keV, **arguments)

    def _absorption(self, energy_keV, edge_keV=None):
        if self.sample.bulk:
            edge = energy_keV if edge_keV is None else edge_keV
            return bulk_absorption(
                energy_keV, edge, self.absorption_composition, self.beam_energy_keV, self.take_off_angle_deg
            )
        return thin_film_absorption(
            energy_keV, self.absorption_composition, self.sample.mass_thickness_g_cm2, self.take_off_angle_deg
        )

    def _build(self):
        axis = self.energy_axis
        edges = axis.edges
        columns, lines = [], []
        for symbol in self.elements:
            element_line_list = element_lines(
                symbol, self.beam_energy_keV, axis.low_keV, axis.high_keV, self.cross_section_exponent
            )
            if not element_line_list:
                raise NoLinesInRangeError(
                    f"element {symbol!r} has no X-ray line between {axis.low_keV:.3g} and "
                    f"{axis.high_keV:.4g} keV (the energy axis) below the beam energy "
                    f"{self.beam_energy_keV:g} keV (lines under 0.1 keV are not modelled)."
                )
            energies = np.array([line.energy_keV for line in element_line_list])
            weights = np.array([line.weight for line in element_line_list])
            line_edges = np.array([line.edge_keV for line in element_line_list])
            factors = weights * self.detector.efficiency(energies) * self._absorption(energies, line_edges)
            fwhm = self.detector.fwhm_keV(energies)
            column = np.zeros(axis.size)
            for centre, width, factor in zip(energies, fwhm, factors):
                column += factor * gaussian_channel_areas(edges, centre, width)
            columns.append(column)
            lines.extend(element_line_list)
        self.lines = lines
        self.element_scales = self._kfactor_scales(columns)
        element_block = np.stack(columns, axis=1) * self.element_scales[None, :]
        energies = axis.energies
        continuum = continuum_shapes(energies, self.beam_energy_keV)
        continuum *= (self.detector.efficiency(energies) * self._absorption(energies))[:, None]
        sums = continuum.sum(axis=0)
        continuum /= np.where(sums > 0, sums, 1.0)[None, :]
        self.G = np.ascontiguousarray(np.concatenate([element_block, continuum], axis=1))

    def _kfactor_scales(self, columns):
        scales = np.ones(len(self.elements))
        if not self.kfactors:
            return scales
        for symbol, value in self.kfactors.items():
            if symbol not in self.elements:
                raise PhysicsInputError(
                    f"kfactors key {symbol!r} is not allowed; it must be one of the model's "
                    f"elements {list(self.elements)}."
                )
            if not (
                isinstance(value, (int, float, np.integer, np.floating))
                and math.isfinite(value)
                and value > 0
            ):
                raise PhysicsInputError(
                    f"kfactors[{symbol!r}]={value!r} is not allowed; it must be a number > 0."
                )
        reference = next(iter(self.kfactors))
        ref_index = self.elements.index(reference)
        ref_sum = columns[ref_index].sum()
        for symbol, value in self.kfactors.items():
            index = self.elements.index(symbol)
            model_k = (ref_sum * atomic_weight(symbol)) / (columns[index].sum() * atomic_weight(reference))
            scales[index] = model_k / (value / self.kfactors[reference])
        return scales


def elements_with_lines(
    energy_axis: EnergyAxis | Any, elements: Sequence[str], beam_energy_keV: float
) -> list[str]:
    """The elements that have at least one line on the axis below the beam energy.

    :class:`EDXModel` refuses an element without any (e.g. O Ka on an axis starting at
    0.83 keV); callers that prefer to drop such elements filter with this first.

    Parameters
    ----------
    energy_axis : EnergyAxis or object with offset, scale, size
    elements : sequence of str
    beam_energy_keV : float

    Returns
    -------
    list of str
        In the given order. Unknown symbols raise :class:`UnknownElementError`.
    """
    axis = _as_axis(energy_axis)
    beam = _check_beam_energy(beam_energy_keV, axis)
    return [symbol for symbol in elements if element_lines(symbol.strip(), beam, axis.low_keV, axis.high_keV)]


def _as_axis(energy_axis):
    if isinstance(energy_axis, EnergyAxis):
        return energy_axis
    return EnergyAxis.from_axis(energy_axis)


def _check_beam_energy(beam_energy_keV, axis):
    ok = (
        isinstance(beam_energy_keV, (int, float, np.integer, np.floating))
        and not isinstance(beam_energy_keV, bool)
        and math.isfinite(beam_energy_keV)
    )
    if not ok or not 0.1 < beam_energy_keV <= MAX_BEAM_ENERGY_KEV:
        raise BeamEnergyError(
            f"beam_energy_keV={beam_energy_keV!r} is not allowed; it must be a number in "
            f"(0.1, {MAX_BEAM_ENERGY_KEV:g}] keV."
        )
    if beam_energy_keV <= axis.low_keV:
        raise BeamEnergyError(
            f"beam_energy_keV={beam_energy_keV!r} is not allowed; it must lie above the start "
            f"of the energy axis ({axis.low_keV:.4g} keV)."
        )
    return float(beam_energy_keV)


def _check_elements(elements, ignored_elements):
    if isinstance(elements, str) or not hasattr(elements, "__iter__"):
        raise PhysicsInputError(
            f"elements={elements!r} is not allowed; it must be a list of symbols like ['Fe', 'Pt']."
        )
    if isinstance(ignored_elements, str):
        ignored_elements = (ignored_elements,)
    symbols = [s.strip() if isinstance(s, str) else s for s in elements]
    ignored = [s.strip() if isinstance(s, str) else s for s in ignored_elements]
    for symbol in symbols + ignored:
        atomic_number(symbol)
    duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
    if duplicates:
        raise PhysicsInputError(
            f"elements={list(elements)!r} is not allowed; {duplicates} appear more than once."
        )
    ordered = symbols + [s for s in dict.fromkeys(ignored) if s not in symbols]
    if not ordered or len(ordered) == len(ignored) and set(ordered) <= set(ignored):
        raise PhysicsInputError(
            f"elements={list(elements)!r} is not allowed; at least one element must be "
            "quantified (not ignored)."
        )
    return tuple(ordered), tuple(dict.fromkeys(ignored))
