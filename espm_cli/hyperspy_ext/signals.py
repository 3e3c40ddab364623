"""The espm_cli signal types: exspy's EDS spectra plus phase decomposition.

Registered with hyperspy (``espm_cli/hyperspy_extension.yaml``) as
``"EDS_espm_cli"`` (a TEM spectrum image) and ``"EDS_SEM_espm_cli"`` (an SEM
one), each eager and lazy, so ``s.set_signal_type("EDS_espm_cli")`` and
``hs.load`` of a saved file give these classes.
"""

from exspy.signals import (
    EDSSEMSpectrum,
    EDSTEMSpectrum,
    LazyEDSSEMSpectrum,
    LazyEDSTEMSpectrum,
)

from .phase_methods import PhaseDecompositionMixin

TEM_SIGNAL_TYPE = "EDS_espm_cli"
SEM_SIGNAL_TYPE = "EDS_SEM_espm_cli"


class EspmCliEDSTEMSpectrum(PhaseDecompositionMixin, EDSTEMSpectrum):
    """An EDS spectrum image from a TEM with espm_cli's phase decomposition.

    Everything of exspy's ``EDSTEMSpectrum`` plus ``build_G``,
    ``decompose_phases``, ``composition_table`` and ``plot_phases``.
    """

    _signal_type = TEM_SIGNAL_TYPE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # exspy's initialiser writes its own type into the metadata
        self.metadata.Signal.signal_type = self._signal_type


class LazyEspmCliEDSTEMSpectrum(EspmCliEDSTEMSpectrum, LazyEDSTEMSpectrum):
    """Lazy (dask) version of :class:`EspmCliEDSTEMSpectrum`."""


class EspmCliEDSSEMSpectrum(PhaseDecompositionMixin, EDSSEMSpectrum):
    """An EDS spectrum image from an SEM with espm_cli's phase decomposition.

    Everything of exspy's ``EDSSEMSpectrum`` plus ``build_G``,
    ``decompose_phases``, ``composition_table`` and ``plot_phases``.
    """

    _signal_type = SEM_SIGNAL_TYPE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # exspy's initialiser writes its own type into the metadata
        self.metadata.Signal.signal_type = self._signal_type


class LazyEspmCliEDSSEMSpectrum(EspmCliEDSSEMSpectrum, LazyEDSSEMSpectrum):
    """Lazy (dask) version of :class:`EspmCliEDSSEMSpectrum`."""
