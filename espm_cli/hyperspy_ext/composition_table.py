"""Phase compositions as a small table that prints well, without pandas."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class CompositionTable:
    """Composition of each phase, in atomic percent.

    Printing it (``print(table)`` or its repr in a notebook) shows one row per
    phase and one column per element.

    Attributes
    ----------
    phases : tuple of str
        Phase names, one per row (``"phase 0"``, ``"phase 1"``, ...).
    elements : tuple of str
        Element symbols, one per column.
    atomic_percent : numpy.ndarray of shape (n_phases, n_elements)
        Atomic percent of each element in each phase: the detected elements of a
        phase share 100; an element below detection, and every element of a continuum
        or empty phase, is NaN (printed as ``-``).
    uncertainty : numpy.ndarray of shape (n_phases, n_elements) or None
        1σ error bars in at.% (``decompose_phases(..., uncertainty=True)``, a parametric
        bootstrap); printed as ``50.1 ± 0.6``. None when not computed.
    """

    phases: tuple
    elements: tuple
    atomic_percent: np.ndarray
    uncertainty: np.ndarray | None = None

    def __post_init__(self):
        values = np.asarray(self.atomic_percent, dtype=float)
        expected = (len(self.phases), len(self.elements))
        if values.shape != expected:
            raise ValueError(
                f"atomic_percent has shape {values.shape}; expected (n_phases, n_elements) = {expected}."
            )
        values.setflags(write=False)
        if self.uncertainty is not None:
            sd = np.array(self.uncertainty, dtype=float)
            if sd.shape != expected:
                raise ValueError(f"uncertainty has shape {sd.shape}; expected {expected}.")
            sd.setflags(write=False)
            object.__setattr__(self, "uncertainty", sd)
        object.__setattr__(self, "phases", tuple(str(p) for p in self.phases))
        object.__setattr__(self, "elements", tuple(str(e) for e in self.elements))
        object.__setattr__(self, "atomic_percent", values)

    @classmethod
    def from_array(
        cls,
        elements: Sequence[str],
        atomic_percent: Any,
        phases: Sequence[str] | None = None,
        uncertainty: Any = None,
    ) -> CompositionTable:
        """Build a table from an (n_phases, n_elements) array.

        Parameters
        ----------
        elements : sequence of str
            Column names.
        atomic_percent : array-like of shape (n_phases, n_elements)
            The values.
        phases : sequence of str, optional
            Row names; ``"phase 0"``, ``"phase 1"``, ... by default.
        uncertainty : array-like of shape (n_phases, n_elements), optional
            1σ error bars in at.%.

        Returns
        -------
        CompositionTable
        """
        values = np.atleast_2d(np.asarray(atomic_percent, dtype=float))
        if phases is None:
            phases = [f"phase {index}" for index in range(values.shape[0])]
        sd = None if uncertainty is None else np.atleast_2d(np.asarray(uncertainty, dtype=float))
        return cls(tuple(phases), tuple(elements), values, sd)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{phase: {element: atomic percent}}`` with plain Python floats."""
        return {
            phase: {el: float(v) for el, v in zip(self.elements, row)}
            for phase, row in zip(self.phases, self.atomic_percent)
        }

    def phase(self, name_or_index: str | int) -> dict[str, float]:
        """``{element: atomic percent}`` of one phase, by name or row index."""
        if isinstance(name_or_index, str):
            if name_or_index not in self.phases:
                raise ValueError(
                    f"phase {name_or_index!r} is not in this table; allowed: {', '.join(self.phases)}."
                )
            index = self.phases.index(name_or_index)
        else:
            index = int(name_or_index)
            if not -len(self.phases) <= index < len(self.phases):
                raise ValueError(f"phase index {index} is out of range for {len(self.phases)} phases.")
        return dict(zip(self.elements, map(float, self.atomic_percent[index])))

    def _cells(self):
        header = ["at.%", *self.elements]
        from espm_cli.analysis.uncertainty import format_value

        sd = self.uncertainty if self.uncertainty is not None else np.full(self.atomic_percent.shape, np.nan)
        rows = [
            [phase, *(format_value(float(value), float(error)) for value, error in zip(row, errors))]
            for phase, row, errors in zip(self.phases, self.atomic_percent, sd)
        ]
        return header, rows

    def __str__(self) -> str:
        header, rows = self._cells()
        widths = [max(len(line[col]) for line in [header, *rows]) for col in range(len(header))]
        lines = []
        for line in [header, *rows]:
            first = line[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:]))
            lines.append("  ".join([first, *rest]))
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self):
        header, rows = self._cells()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
