"""Registry of update-step backends: name -> bundle of pure step functions.

A backend is a :class:`Backend` of four functions with the signatures of
:mod:`espm_cli.solver.reference`. A faster backend registers itself with
:func:`register_backend` when its module is imported; modules listed in
``_BACKEND_MODULES`` are imported on first request, and ``"auto"`` picks the first
available name in ``AUTO_PREFERENCE``.
"""

import importlib
from collections.abc import Callable
from typing import NamedTuple


def serves_plain_kl(beta, weighted):
    """The cases a fused KL backend serves: β = 1, no masked pixel or entry."""
    return beta == 1.0 and not weighted


def serves_every_case(beta, weighted):
    """A backend with the general path (any β, masked pixels and entries)."""
    return True


class Backend(NamedTuple):
    """The step functions the fit loop calls, and which losses and masks they serve.

    ``serves(beta, weighted)`` says whether the backend handles that β and, when
    ``weighted``, masked pixels or entries (masked channels are dropped before any
    backend sees them). Only a backend that serves a case gets keyword arguments
    ``beta``, ``observed_pixels`` and ``missing`` in ``prepare_counts``.

    ``evaluate`` (optional) shares work between steps explicitly:
    ``evaluate(data, G, W, H, **regularisation) -> (terms, workspace)`` returns the
    objective terms and a workspace (the H-step statistics at the same W and H, or None);
    the fit loop hands that workspace to the next ``h_step(..., workspace=workspace)``,
    which is then at the same point. Nothing is cached behind the caller's back.

    A device backend (:mod:`espm_cli.solver._array_api_backend`) also gives
    ``to_device(data, array)`` and ``to_host(array)``: the fit loop moves G, W, H and the
    held entries to the device once and W, H back at the end;
    ``extrapolated_point`` is then the loop's extrapolated trial on the device.
    ``default_dtype`` is the compute dtype when the estimator's ``dtype`` is None; a
    backend with ``to_device`` takes ``device=`` in ``prepare_counts``.

    With ``shares_steps`` the chain goes all the way round: ``h_step(..., share=True)``
    returns ``(H_new, workspace)`` for ``w_step(..., workspace=workspace)`` at (W, H_new),
    ``w_step(..., share=True)`` returns ``(W_new, workspace)`` for
    ``evaluate(..., workspace=workspace)`` at (W_new, H_new). Every workspace is used once,
    by the call that follows at the same arrays (a backend may check that it is); without
    one a step does its own work, with the same result.
    """

    prepare_counts: Callable
    h_step: Callable
    w_step: Callable
    objective_terms: Callable
    serves: Callable = serves_plain_kl
    evaluate: Callable | None = None
    shares_steps: bool = False
    to_device: Callable | None = None
    to_host: Callable | None = None
    extrapolated_point: Callable | None = None
    default_dtype: str = "float64"


_BACKENDS = {}
_BACKEND_MODULES = {
    "reference": "espm_cli.solver.reference",
    "numba": "espm_cli.solver._numba_backend",
    # written once against the array API: numpy here, CuPy or PyTorch on a GPU
    **{name: "espm_cli.solver._array_api_backend" for name in ("array-api", "cuda", "cupy", "torch")},
}
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


def backend_for(name, beta, pattern, device=None):
    """The backend for a fit, and the keyword arguments of its ``prepare_counts``.

    Parameters
    ----------
    name : str
        ``"auto"`` (the first name of ``AUTO_PREFERENCE`` that serves the case) or a name.
    beta : float
    pattern : MissingPattern
    device : str or None
        For a device backend (``backend="cuda"``, ...): passed to its ``prepare_counts``.

    Returns
    -------
    backend : Backend
    options : dict
        Empty for plain KL (so every backend's ``prepare_counts`` is called as before).
    """
    weighted = pattern.needs_weights
    general = beta != 1.0 or weighted
    options = (
        {"beta": beta, "observed_pixels": pattern.observed_pixels, "missing": pattern.missing}
        if general
        else {}
    )
    if device is not None and name == "auto":
        raise ValueError(
            f"device={device!r} needs a device backend: backend='cuda' (or "
            "'cupy', 'torch', 'array-api'); backend='auto' runs on the CPU."
        )
    if name == "auto":
        for candidate in AUTO_PREFERENCE:
            try:
                backend = get_backend(candidate)
            except (KeyError, ImportError):
                continue
            if backend.serves(beta, weighted):
                return backend, options
    backend = get_backend(name)
    if not backend.serves(beta, weighted):
        masks = " with masked pixels or entries" if weighted else ""
        raise ValueError(
            f"backend={name!r} does not serve beta_loss={beta:g}{masks}; use backend='auto' or 'reference'."
        )
    if device is not None:
        if backend.to_device is None:
            raise ValueError(
                f"device={device!r} needs a device backend: backend='cuda' (or "
                f"'cupy', 'torch', 'array-api'); backend={name!r} runs on the CPU."
            )
        options = {**options, "device": device}
    return backend, options


def _register_reference():
    from espm_cli.solver import beta_steps, counts, masked_counts, reference

    # The reference backend serves every case: plain KL through today's CountData steps
    # (so its results stay as they were), the rest through the general steps.
    steps = {counts.CountData: reference, masked_counts.MaskedCounts: beta_steps}

    def prepare_counts(X, dtype, *, beta=1.0, observed_pixels=None, missing=None):
        if beta == 1.0 and observed_pixels is None and missing is None:
            return counts.prepare_counts(X, dtype)
        return masked_counts.prepare_masked_counts(
            X, dtype, beta=beta, observed_pixels=observed_pixels, missing=missing
        )

    def h_step(data, *args, workspace=None, **kwargs):
        if workspace is not None:
            kwargs["workspace"] = workspace
        return steps[type(data)].h_step(data, *args, **kwargs)

    def w_step(data, *args, **kwargs):
        return steps[type(data)].w_step(data, *args, **kwargs)

    def objective_terms(data, *args, **kwargs):
        return steps[type(data)].objective_terms(data, *args, **kwargs)

    def evaluate(data, *args, **kwargs):
        if isinstance(data, masked_counts.MaskedCounts):
            return beta_steps.evaluate(data, *args, **kwargs)
        return reference.objective_terms(data, *args, **kwargs), None

    register_backend(
        "reference",
        Backend(prepare_counts, h_step, w_step, objective_terms, serves=serves_every_case, evaluate=evaluate),
    )


_register_reference()
