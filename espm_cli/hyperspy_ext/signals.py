"""The espm_cli signal types: exspy's EDS spectra plus phase decomposition.

Registered with hyperspy (``espm_cli/hyperspy_extension.yaml``) as
``"EDS_espm_cli"`` (a TEM spectrum image) and ``"EDS_SEM_espm_cli"`` (an SEM
one), each eager and lazy, so ``s.set_signal_type("EDS_espm_cli")`` and
``hs.load`` of a saved file give these classes.

exspy's EDS methods choose between the TEM and the SEM branch of the metadata by
comparing ``metadata.Signal.signal_type`` with ``"EDS_TEM"`` / ``"EDS_SEM"`` (in
``_get_line_energy`` and ``get_take_off_angle``, which ``get_lines_intensity``,
``quantification``, ``plot_xray_lines`` and the rest call). Registering under exspy's
own strings would make two classes claim one type, so these classes keep their own
strings and run exactly those two methods with exspy's string in place.
"""

import contextlib

from exspy.signals import (
    EDSSEMSpectrum,
    EDSTEMSpectrum,
    LazyEDSSEMSpectrum,
    LazyEDSTEMSpectrum,
)

from .phase_methods import PhaseDecompositionMixin, _SignalBase

TEM_SIGNAL_TYPE = "EDS_espm_cli"
SEM_SIGNAL_TYPE = "EDS_SEM_espm_cli"


class _ExspyDispatchMixin(_SignalBase):
    """Lets exspy's signal-type tests see the exspy type these classes extend."""

    #: exspy's signal_type string of the base class ("EDS_TEM" or "EDS_SEM").
    _exspy_signal_type: str | None = None

    @contextlib.contextmanager
    def _as_exspy_type(self):
        signal = self.metadata.Signal
        saved = signal.signal_type
        signal.signal_type = self._exspy_signal_type
        try:
            yield
        finally:
            signal.signal_type = saved

    def _get_line_energy(self, Xray_line, FWHM_MnKa=None):
        with self._as_exspy_type():
            return super()._get_line_energy(Xray_line, FWHM_MnKa=FWHM_MnKa)

    def get_take_off_angle(self):
        """Take-off angle (degrees) from the stage tilt and the detector angles (exspy's)."""
        with self._as_exspy_type():
            return super().get_take_off_angle()


class EspmCliEDSTEMSpectrum(PhaseDecompositionMixin, _ExspyDispatchMixin, EDSTEMSpectrum):
    """An EDS spectrum image from a TEM with espm_cli's phase decomposition.

    Everything of exspy's ``EDSTEMSpectrum`` (line intensities, quantification, X-ray
    line markers, ...) plus ``build_G``, ``decompose_phases``, ``composition_table`` and
    ``plot_phases``; ``decomposition(algorithm=SmoothNMF(...))`` needs no flags.
    """

    _signal_type = TEM_SIGNAL_TYPE
    _exspy_signal_type = "EDS_TEM"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # exspy's initialiser writes its own type into the metadata
        self.metadata.Signal.signal_type = self._signal_type


class LazyEspmCliEDSTEMSpectrum(EspmCliEDSTEMSpectrum, LazyEDSTEMSpectrum):
    """Lazy (dask) version of :class:`EspmCliEDSTEMSpectrum`."""


class EspmCliEDSSEMSpectrum(PhaseDecompositionMixin, _ExspyDispatchMixin, EDSSEMSpectrum):
    """An EDS spectrum image from an SEM with espm_cli's phase decomposition.

    Everything of exspy's ``EDSSEMSpectrum`` plus ``build_G``, ``decompose_phases``,
    ``composition_table`` and ``plot_phases``; ``decomposition(algorithm=SmoothNMF(...))``
    needs no flags.
    """

    _signal_type = SEM_SIGNAL_TYPE
    _exspy_signal_type = "EDS_SEM"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # exspy's initialiser writes its own type into the metadata
        self.metadata.Signal.signal_type = self._signal_type


class LazyEspmCliEDSSEMSpectrum(EspmCliEDSSEMSpectrum, LazyEDSSEMSpectrum):
    """Lazy (dask) version of :class:`EspmCliEDSSEMSpectrum`."""
