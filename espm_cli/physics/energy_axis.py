"""The energy axis of a spectrum: offset, scale and size, as hyperspy gives them."""

import math
from dataclasses import dataclass

import numpy as np

from .errors import EnergyAxisError

__all__ = ["EnergyAxis"]


@dataclass(frozen=True)
class EnergyAxis:
    """A uniform energy axis in keV.

    Channel ``i`` is centred on ``offset_keV + scale_keV * i`` and covers
    ``[centre - scale_keV / 2, centre + scale_keV / 2]``. Negative offsets (the
    zero-energy strobe peak below the first line) are normal.

    Parameters
    ----------
    offset_keV : float
        Centre of the first channel, keV.
    scale_keV : float
        Channel width, keV; must be positive.
    size : int
        Number of channels; must be at least 1.
    """

    offset_keV: float
    scale_keV: float
    size: int

    def __post_init__(self):
        if not (
            isinstance(self.offset_keV, (int, float, np.floating, np.integer))
            and math.isfinite(self.offset_keV)
        ):
            raise EnergyAxisError(
                f"offset_keV={self.offset_keV!r} is not allowed; it must be a finite number."
            )
        if not (
            isinstance(self.scale_keV, (int, float, np.floating, np.integer))
            and math.isfinite(self.scale_keV)
            and self.scale_keV > 0
        ):
            raise EnergyAxisError(
                f"scale_keV={self.scale_keV!r} is not allowed; it must be a finite number > 0."
            )
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise EnergyAxisError(f"size={self.size!r} is not allowed; it must be an integer >= 1.")
        object.__setattr__(self, "offset_keV", float(self.offset_keV))
        object.__setattr__(self, "scale_keV", float(self.scale_keV))
        object.__setattr__(self, "size", int(self.size))

    @classmethod
    def from_axis(cls, axis):
        """Build from any object with ``offset``, ``scale`` and ``size`` (hyperspy's DataAxis).

        Parameters
        ----------
        axis : object
            Has ``offset``, ``scale`` and ``size``; an optional ``units`` of ``"eV"``
            converts to keV (any other unit is taken as keV).

        Returns
        -------
        EnergyAxis
        """
        try:
            offset, scale, size = axis.offset, axis.scale, axis.size
        except AttributeError as error:
            raise EnergyAxisError(
                f"axis={axis!r} is not allowed; it needs offset, scale and size attributes."
            ) from error
        units = getattr(axis, "units", None)
        if isinstance(units, str) and units.strip() == "eV":
            offset, scale = offset / 1000.0, scale / 1000.0
        return cls(offset, scale, size)

    @property
    def energies(self):
        """Channel centres in keV, shape (size,)."""
        return self.offset_keV + self.scale_keV * np.arange(self.size, dtype=np.float64)

    @property
    def edges(self):
        """Channel boundaries in keV, shape (size + 1,)."""
        return self.offset_keV + self.scale_keV * (np.arange(self.size + 1) - 0.5)

    @property
    def low_keV(self):
        """Lower edge of the first channel, keV."""
        return self.offset_keV - 0.5 * self.scale_keV

    @property
    def high_keV(self):
        """Upper edge of the last channel, keV."""
        return self.offset_keV + self.scale_keV * (self.size - 0.5)

    def channel_of(self, energy_keV):
        """Index of the channel whose interval holds ``energy_keV``."""
        return int(math.floor((energy_keV - self.low_keV) / self.scale_keV))
