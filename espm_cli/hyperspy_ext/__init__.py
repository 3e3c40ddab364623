"""espm_cli inside hyperspy.

- ``s.decomposition(algorithm=SmoothNMF(...))`` works on any spectrum image
  (the estimator follows hyperspy's orientation); on the types below it needs no
  flags, integer counts included.
- Signal types ``"EDS_espm_cli"`` (TEM) and ``"EDS_SEM_espm_cli"`` (SEM), eager
  and lazy, registered through ``espm_cli/hyperspy_extension.yaml``; they keep exspy's
  EDS methods working and add ``build_G``, ``decompose_phases`` (the workflow of
  ``espm decompose``, :mod:`espm_cli.analysis`), ``composition_table``,
  ``plot_phases``, ``phase_spectra`` and ``kfactors_from_model``.
- :func:`load` opens a file as one of these; :func:`load_result` reads a result
  file of the command line back into hyperspy signals.
"""

from .composition_table import CompositionTable
from .loading import load
from .phase_methods import PhaseResults
from .result_file import ResultSignals, load_result
from .signals import (
    SEM_SIGNAL_TYPE,
    TEM_SIGNAL_TYPE,
    EspmCliEDSSEMSpectrum,
    EspmCliEDSTEMSpectrum,
    LazyEspmCliEDSSEMSpectrum,
    LazyEspmCliEDSTEMSpectrum,
)

__all__ = [
    "CompositionTable",
    "EspmCliEDSSEMSpectrum",
    "EspmCliEDSTEMSpectrum",
    "LazyEspmCliEDSSEMSpectrum",
    "LazyEspmCliEDSTEMSpectrum",
    "PhaseResults",
    "ResultSignals",
    "SEM_SIGNAL_TYPE",
    "TEM_SIGNAL_TYPE",
    "load",
    "load_result",
]
