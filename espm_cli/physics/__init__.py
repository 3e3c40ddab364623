"""X-ray physics for EDX: the G matrix of X ~ G W H.

Knows nothing of files, hyperspy or solvers. Main entry point: :class:`EDXModel`.
"""

from .composition import Composition
from .detector import Detector
from .energy_axis import EnergyAxis
from .errors import (
    BeamEnergyError,
    EnergyAxisError,
    NoLinesInRangeError,
    PhysicsInputError,
    UnknownElementError,
)
from .model import EDXModel, elements_with_lines
from .sample import Sample
from .xray_lines import XRayLine

__all__ = [
    "BeamEnergyError",
    "Composition",
    "Detector",
    "EDXModel",
    "EnergyAxis",
    "EnergyAxisError",
    "NoLinesInRangeError",
    "PhysicsInputError",
    "Sample",
    "UnknownElementError",
    "XRayLine",
    "elements_with_lines",
]
