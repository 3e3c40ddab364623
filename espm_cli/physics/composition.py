"""Compositions of phases: from W's element rows to atomic and weight percent."""

import warnings
from dataclasses import dataclass

import numpy as np

from .xray_lines import atomic_weight

__all__ = ["Composition", "composition_from_amounts"]


@dataclass(frozen=True)
class Composition:
    """Per-phase composition.

    Attributes
    ----------
    elements : tuple of str
        Element symbols (ignored elements left out), column order of the arrays.
    atomic_percent : ndarray, shape (k, n_elements)
        Each row sums to 100 (NaN for a phase with no element content).
    weight_percent : ndarray, shape (k, n_elements)
        Each row sums to 100 (NaN likewise).
    """

    elements: tuple
    atomic_percent: np.ndarray
    weight_percent: np.ndarray

    def as_dicts(self, unit="atomic"):
        """One ``{symbol: percent}`` per phase; ``unit`` is "atomic" or "weight"."""
        if unit not in ("atomic", "weight"):
            raise ValueError(f"unit={unit!r} is not allowed; use 'atomic' or 'weight'.")
        table = self.atomic_percent if unit == "atomic" else self.weight_percent
        return [dict(zip(self.elements, map(float, row))) for row in table]


def _normalise_rows(values):
    totals = values.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    if np.any(empty):
        warnings.warn(
            f"{int(empty.sum())} phase(s) have no element content; their composition is NaN.",
            RuntimeWarning,
            stacklevel=3,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, 100.0 * values / np.where(totals > 0, totals, 1.0), np.nan)


def composition_from_amounts(elements, amounts):
    """Atomic and weight percent from amounts proportional to numbers of atoms.

    Parameters
    ----------
    elements : sequence of str
    amounts : ndarray, shape (k, n_elements)
        Nonnegative; small negative values (round-off) are clipped to 0.

    Returns
    -------
    Composition
    """
    amounts = np.clip(np.asarray(amounts, dtype=np.float64), 0.0, None)
    weights = np.array([atomic_weight(symbol) for symbol in elements])
    return Composition(tuple(elements), _normalise_rows(amounts), _normalise_rows(amounts * weights[None, :]))
