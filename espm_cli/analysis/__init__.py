"""The decomposition workflow both front ends use (the command line and hyperspy).

acquisition -> model (:func:`build_model`), the fit window (:func:`choose_fit_window`),
the estimator's settings (:func:`make_estimator`, defaults in :mod:`.defaults`), what
each phase is (:func:`describe_phases`), what the model missed (:func:`residual_peaks`),
and the one result type (:class:`espm_cli.io.DecompositionResult`, assembled by
:func:`assemble_result`). :func:`run_decomposition` is a whole run from a configuration
(checked against the option table of :mod:`.run_config`) to the files on disk.

Heavy libraries are imported inside the functions that need them.
"""

from .defaults import DEFAULT_INIT, DEFAULT_LOW_KEV, DEFAULT_SEED, DEFAULT_SIMPLEX, ESTIMATOR_DEFAULTS
from .notices import EspmWarning
from .run_config import DEFAULT_CONFIG, RunConfig, make_config

#: Public names -> the module that defines them (imported on first use, so that the
#: command line's option table can read the defaults without importing numpy).
_LAZY = {
    "assemble_result": "decomposition",
    "fit_matrix": "decomposition",
    "make_estimator": "decomposition",
    "solver_arguments": "decomposition",
    "MissingAcquisitionError": "model",
    "build_model": "model",
    "PhaseDescription": "phases",
    "describe_phases": "phases",
    "phase_name": "phases",
    "ResidualPeak": "residuals",
    "candidate_lines": "residuals",
    "residual_peaks": "residuals",
    "RunFailed": "run",
    "RunOutcome": "run",
    "run_decomposition": "run",
    "FitWindow": "window",
    "check_window_share": "window",
    "choose_fit_window": "window",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_INIT",
    "DEFAULT_LOW_KEV",
    "DEFAULT_SEED",
    "DEFAULT_SIMPLEX",
    "ESTIMATOR_DEFAULTS",
    "EspmWarning",
    "FitWindow",
    "MissingAcquisitionError",
    "PhaseDescription",
    "ResidualPeak",
    "RunConfig",
    "RunFailed",
    "RunOutcome",
    "assemble_result",
    "build_model",
    "candidate_lines",
    "check_window_share",
    "choose_fit_window",
    "describe_phases",
    "fit_matrix",
    "make_config",
    "make_estimator",
    "phase_name",
    "residual_peaks",
    "run_decomposition",
    "solver_arguments",
]
