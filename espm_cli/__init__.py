"""espm_cli: decompose EDX spectrum images into phases (X ~ G W H).

The package is split in layers that import one way only:
cli -> (io, report, hyperspy_ext, simulate) -> (physics, solver).
Nothing heavy is imported here, so that ``espm --help`` stays instant.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "load_result"]


def load(path, **load_options):
    """Load a spectrum image as an espm_cli hyperspy signal.

    See :func:`espm_cli.hyperspy_ext.load` (imported here on first call, so that
    importing espm_cli stays light).
    """
    from .hyperspy_ext import load as _load

    return _load(path, **load_options)


def load_result(path):
    """Read an espm_cli result file (HDF5) into hyperspy signals.

    See :func:`espm_cli.hyperspy_ext.load_result`.
    """
    from .hyperspy_ext import load_result as _load_result

    return _load_result(path)
