"""Phases of a synthetic sample, given by their composition in atomic percent."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Phase:
    """A phase: a name and its composition ``{symbol: atomic percent}`` (sums to 100)."""

    name: str
    composition: dict

    def __post_init__(self):
        if not self.composition:
            raise ValueError(f"phase {self.name!r} must have at least one element")
        for symbol, percent in self.composition.items():
            if not (isinstance(percent, (int, float)) and math.isfinite(percent) and percent >= 0):
                raise ValueError(
                    f"phase {self.name!r}: {symbol}={percent!r} is not allowed; "
                    "atomic percents must be numbers >= 0"
                )
        total = sum(self.composition.values())
        if total <= 0:
            raise ValueError(f"phase {self.name!r}: atomic percents must not all be 0")
        normalised = {symbol: 100.0 * value / total for symbol, value in self.composition.items()}
        object.__setattr__(self, "composition", normalised)


#: Three phases a TEM user meets: a silicate matrix, metal alloy particles, an oxide layer.
DEFAULT_PHASES = (
    Phase("silicate matrix", {"O": 62.0, "Si": 30.0, "Al": 8.0}),
    Phase("FePt particles", {"Fe": 50.0, "Pt": 50.0}),
    Phase("TiO2 layer", {"Ti": 33.3, "O": 66.7}),
)


def parse_phase(text: str, name: str = "") -> Phase:
    """A phase from text like ``"Fe=50,Pt=50"`` (atomic percents, renormalised to 100).

    Raises
    ------
    ValueError
        When the text is not ``Symbol=number`` pairs separated by commas.
    """
    composition = {}
    for item in str(text).split(","):
        symbol, separator, value = item.partition("=")
        symbol = symbol.strip()
        try:
            percent = float(value)
        except ValueError:
            percent = None
        if not separator or not symbol or percent is None:
            raise ValueError(
                f"phase {text!r} is not allowed; write it as Symbol=at.% pairs separated "
                "by commas, e.g. 'Fe=50,Pt=50'"
            )
        composition[symbol] = composition.get(symbol, 0.0) + percent
    return Phase(name or "-".join(composition), composition)


def elements_of(phases) -> list[str]:
    """All element symbols of the phases, in order of first appearance."""
    return list(dict.fromkeys(symbol for phase in phases for symbol in phase.composition))
