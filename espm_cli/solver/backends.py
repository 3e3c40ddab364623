"""Registry of update-step backends: name -> bundle of pure step functions.

A backend is a :class:`Backend` of four functions with the signatures of
:mod:`espm_cli.solver.reference`. A faster backend registers itself with
:func:`register_backend` when its module is imported; modules listed in
``_BACKEND_MODULES`` are imported on first request, and ``"auto"`` picks the first
available name in ``AUTO_PREFERENCE``.
"""

import importlib
from typing import Callable, NamedTuple


class Backend(NamedTuple):
    """The step functions the fit loop calls."""

    prepare_counts: Callable
    h_step: Callable
    w_step: Callable
    objective_terms: Callable


_BACKENDS = {}
_BACKEND_MODULES = {"reference": "espm_cli.solver.reference",
                    "numba": "espm_cli.solver._numba_backend"}
AUTO_PREFERENCE = ("numba", "reference")


def register_backend(name, backend):
    """Make ``backend`` available as ``SmoothNMF(backend=name)``.

    Parameters
    ----------
    name : str
    backend : Backend
    """
    _BACKENDS[name] = backend


def available_backends():
    """Names accepted by ``backend=`` (besides ``"auto"``)."""
    return tuple(sorted(set(_BACKENDS) | set(_BACKEND_MODULES)))


def get_backend(name):
    """The :class:`Backend` registered as ``name`` (``"auto"``: the fastest available).

    Parameters
    ----------
    name : str

    Returns
    -------
    Backend
    """
    if name == "auto":
        for candidate in AUTO_PREFERENCE:
            try:
                return get_backend(candidate)
            except (KeyError, ImportError):
                continue
    if name not in _BACKENDS and name in _BACKEND_MODULES:
        importlib.import_module(_BACKEND_MODULES[name])
    return _BACKENDS[name]


def _register_reference():
    from espm_cli.solver import counts, reference

    register_backend("reference", Backend(counts.prepare_counts, reference.h_step,
                                          reference.w_step, reference.objective_terms))


_register_reference()
