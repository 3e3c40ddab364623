"""Errors raised by :mod:`espm_cli.physics`.

All are :class:`ValueError` subclasses so that callers can catch bad input with one
``except ValueError`` while still telling the cases apart.
"""


class PhysicsInputError(ValueError):
    """Base class for refused physics input."""


class UnknownElementError(PhysicsInputError):
    """An element symbol that is not a chemical element."""


class NoLinesInRangeError(PhysicsInputError):
    """An element without any X-ray line inside the energy axis and below the beam energy."""


class BeamEnergyError(PhysicsInputError):
    """A beam energy that is not a positive number inside the range the model covers."""


class EnergyAxisError(PhysicsInputError):
    """An energy axis with a non-positive scale, no channels or non-finite values."""
