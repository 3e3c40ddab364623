"""espm_cli inside hyperspy.

- ``s.decomposition(algorithm=SmoothNMF(...))`` works on any spectrum image
  (the estimator follows hyperspy's orientation, nothing here is needed for it).
- Signal types ``"EDS_espm_cli"`` (TEM) and ``"EDS_SEM_espm_cli"`` (SEM), eager
  and lazy, registered through ``espm_cli/hyperspy_extension.yaml``; they add
  ``build_G``, ``decompose_phases``, ``composition_table`` and ``plot_phases``.
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
