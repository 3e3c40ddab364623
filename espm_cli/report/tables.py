"""Composition table (CSV) of a decomposition result."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..io.atomic import write_text_atomic
from ..io.result_file import DecompositionResult


def composition_rows(result: DecompositionResult) -> list[dict]:
    """One dict per phase: number, name, kind, mean abundance, counts, line share, at.%.

    at.% is NaN for an element below detection (written as an empty cell); with error
    bars (``--uncertainty``) each element also has ``<El>_at%_sd`` (1σ).
    """
    from .figures import phase_names

    rows = []
    maps = np.asarray(result.maps)
    composition = np.asarray(result.composition, dtype=float)
    names = phase_names(result)
    nan = float("nan")
    for index in range(result.n_components):
        row = {
            "phase": index + 1,
            "name": names[index],
            "kind": result.phase_kinds[index] if result.phase_kinds else "",
            "mean_abundance": float(maps[index].mean()),
            "counts": float(result.phase_counts[index]) if result.phase_counts is not None else nan,
            "line_fraction": (
                float(result.line_fraction[index]) if result.line_fraction is not None else nan
            ),
        }
        for column, element in enumerate(result.elements):
            row[f"{element}_at%"] = float(composition[index, column])
        if result.composition_sd is not None:  # --uncertainty: 1σ beside each value
            for column, element in enumerate(result.elements):
                row[f"{element}_at%_sd"] = float(np.asarray(result.composition_sd)[index, column])
        rows.append(row)
    return rows


def write_composition_csv(result: DecompositionResult, path: str | Path) -> Path:
    """Write the composition table (at.% per phase and element) atomically."""
    rows = composition_rows(result)
    buffer = io.StringIO()
    fields = ["phase", "name", "kind", "mean_abundance", "counts", "line_fraction"] + [
        f"{e}_at%" for e in result.elements
    ]
    if result.composition_sd is not None:
        fields += [f"{e}_at%_sd" for e in result.elements]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                name: (("" if value != value else f"{value:.4g}") if isinstance(value, float) else value)
                for name, value in row.items()
            }
        )
    return write_text_atomic(path, buffer.getvalue())
