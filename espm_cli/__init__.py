"""espm_cli: decompose EDX spectrum images into phases (X ~ G W H).

The package is split in layers that import one way only:
cli -> (io, report, hyperspy_ext, simulate) -> (physics, solver).
Nothing heavy is imported here, so that ``espm --help`` stays instant.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "load_result", "select_n_components"]


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


def select_n_components(signal_or_X, k_range, **options):
    """Held-out Poisson deviance per number of phases, and the suggested k.

    Parameters
    ----------
    signal_or_X : hyperspy signal or array-like (n_pixels, n_channels)
        An espm_cli signal (``espm_cli.load``), or the counts as a matrix; a matrix needs
        ``shape_2d=`` and takes ``model=`` (an EDXModel on its channels; None: plain NMF).
    k_range : sequence of int or str
        ``range(2, 9)`` or ``"2..8"``.
    **options
        ``n_folds`` (3), ``fold_kind`` ("speckle" or "blocks"), ``fold_seed`` (0), and
        SmoothNMF arguments (defaults: those of ``espm decompose``); for a signal also
        ``elements``, ``model``, ``model_options`` as for ``decompose_phases``.

    Returns
    -------
    espm_cli.analysis.select_k.KSelection
        ``.suggested_k``, ``.best_k``, ``.rows()``, ``.mean``, ``.standard_error``.

    See Also
    --------
    espm_cli.analysis.select_k : the folds, the deviance and the rule (docs/select_k.md).
    """
    if hasattr(signal_or_X, "axes_manager"):
        if not hasattr(signal_or_X, "select_n_components"):
            raise ValueError(
                "select_n_components needs an espm_cli signal type: open the file "
                "with espm_cli.load(), or set_signal_type('EDS_espm_cli')"
            )
        return signal_or_X.select_n_components(k_range, **options)
    from .analysis import select_k as selection

    if "shape_2d" not in options:
        raise ValueError("select_n_components on a matrix needs shape_2d=(ny, nx), the pixel grid")
    k_values = selection.parse_k_range(k_range) if isinstance(k_range, str) else tuple(k_range)
    return selection.select_k(signal_or_X, k_values, **options)
