"""Moved to :mod:`espm_cli.analysis.run` (the workflow is the library's, not the CLI's).

Kept so that ``from espm_cli.cli import pipeline`` (decompose, batch, study) still works.
"""

from ..analysis.defaults import DEFAULT_LOW_KEV  # noqa: F401
from ..analysis.run import (  # noqa: F401
    DEFAULT_CONFIG,
    PRESENTATION_KEYS,
    REPORT_FILES,
    RunFailed,
    RunOutcome,
    check_output_folder,
    config_hash,
    default_output_dir,
    fit,
    full_config,
    make_result,
    result_path,
    run_decomposition,
    solver_accepts_callback,
    values_used,
)
