"""Synthetic EDX spectrum images with known truth (phases, maps, Poisson counts)."""

from .maps import SHAPES, abundance_maps
from .phases import DEFAULT_PHASES, Phase, elements_of, parse_phase
from .synthetic import Simulation, SimulationSettings, phase_weights, simulate, truth_path, write_simulation

__all__ = [
    "DEFAULT_PHASES",
    "SHAPES",
    "Phase",
    "Simulation",
    "SimulationSettings",
    "abundance_maps",
    "elements_of",
    "parse_phase",
    "phase_weights",
    "simulate",
    "truth_path",
    "write_simulation",
]
