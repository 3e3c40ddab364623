"""The one set of defaults both front ends (``espm decompose`` and ``decompose_phases``) use.

The command line's option table (:mod:`.run_config`, whose rows give the run
configuration's defaults, ``DEFAULT_CONFIG``) and the keyword defaults of
``decompose_phases`` all read the estimator's settings from here, so that the same file
with the same options gives the same fit through either front end.
"""

from __future__ import annotations

from typing import Any

#: How SmoothNMF starts (the solver's ``init``): change it here for both front ends.
#: "auto": the vertex start with physics, NNDSVD-a without (docs/starts.md).
DEFAULT_INIT = "auto"
#: Number of starts (the solver's ``n_init``); None: the solver's "auto".
DEFAULT_N_INIT = None
#: Seed of the start (the solver's ``random_state``): a fixed seed, so reruns agree.
DEFAULT_SEED = 0
#: Constraint of the fit. "H" (the abundances of a pixel sum to 1): why, measured against
#: "W" and None on the real files and the simulated truth, in docs/phases.md.
DEFAULT_SIMPLEX = "H"
#: Without an explicit energy range, physics fits start here: below lie the detector's
#: zero (strobe) peak and noise, which no X-ray line or continuum explains.
DEFAULT_LOW_KEV = 0.2

#: Estimator settings by run-configuration name, with their defaults.
ESTIMATOR_DEFAULTS: dict[str, Any] = {
    "n_components": 3,
    "lambda_L": 0.0,
    "mu": 0.0,
    "epsilon_reg": 1.0,
    "simplex": DEFAULT_SIMPLEX,
    "max_iter": 200,
    "tol": 1e-4,
    "seed": DEFAULT_SEED,
    "init": DEFAULT_INIT,
    "n_init": DEFAULT_N_INIT,
    # the data term and dose scaling (docs/solver.md): the Poisson likelihood of the raw
    # counts; --normalize for weights that mean the same at any dose
    "beta_loss": "kullback-leibler",
    "normalize": False,
    # how F is minimised (docs/solver.md): multiplicative updates, projected gradient or
    # Adagrad; the L1 weight on the maps and Adagrad's rate
    "solver": "mu",
    "l1": 0.0,
    "learning_rate": 0.1,
    # where the fit runs: "auto" is the fastest CPU backend; "cuda" an NVIDIA GPU
    # (docs/gpu.md). It does not change the result beyond rounding.
    "backend": "auto",
}

#: Names ``--backend`` accepts (the solver's registry, written out so that the option
#: table imports no solver; tests/solver/test_array_api_backend.py holds them equal).
BACKEND_CHOICES = ("auto", "numba", "reference", "cuda", "cupy", "torch", "array-api")

#: The decomposition: "smooth-nmf" (SmoothNMF, X ≈ G W H, every setting above) or
#: "semi-nmf" (SemiNMF: nonnegative spectra, signed maps, Frobenius loss, for data that
#: are no longer counts). Not a SmoothNMF argument, so not in ESTIMATOR_DEFAULTS.
DEFAULT_METHOD = "smooth-nmf"
#: Estimator settings SemiNMF also takes (by run-configuration name); the others must keep
#: the method's own values (``METHOD_DEFAULTS``) under --method semi-nmf.
SEMI_NMF_SETTINGS = ("n_components", "solver", "l1", "max_iter", "tol", "seed")
#: Where a method's defaults differ from ``ESTIMATOR_DEFAULTS`` (by run-configuration name).
#: semi-nmf fits the Frobenius loss with signed maps, which no simplex constrains: a run
#: that does not set them gets these values, and they are what its result file records.
#: It makes one start, from the leading singular vectors ("svd"), and runs in numpy (the
#: "reference" backend's arrays; numba and the GPU serve smooth-nmf only).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "smooth-nmf": {},
    "semi-nmf": {
        "simplex": None,
        "beta_loss": "frobenius",
        "init": "svd",
        "n_init": 1,
        "backend": "reference",
    },
}
#: Solvers of each method (the others are smooth-nmf's only).
METHOD_SOLVERS = {"smooth-nmf": ("mu", "pgd", "adagrad"), "semi-nmf": ("mu", "pgd")}
#: Starts of each method (``init``): SmoothNMF's, and SemiNMF's singular-vector or random
#: dictionary.
METHOD_INITS = {"smooth-nmf": ("auto", "spa", "kmeans", "nndsvda", "random"), "semi-nmf": ("svd", "random")}
#: Backends each method runs on ("auto": the fastest of them).
METHOD_BACKENDS = {"semi-nmf": ("auto", "reference")}

#: Run-configuration names -> SmoothNMF argument names, where they differ.
ESTIMATOR_ARGUMENT = {"seed": "random_state"}


def method_defaults(method: str) -> dict[str, Any]:
    """``ESTIMATOR_DEFAULTS`` with the method's own values (run-configuration names)."""
    return {**ESTIMATOR_DEFAULTS, **METHOD_DEFAULTS[method]}


def _same(value: Any, default: Any) -> bool:
    """Whether a setting's value is its default (simplex "none" is None, β 2 is frobenius)."""

    def canonical(item):
        if isinstance(item, str):
            item = item.strip().lower()
            return {"none": None, "frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}.get(
                item, item
            )
        if isinstance(item, (list, tuple)):
            return tuple(canonical(part) for part in item)
        if isinstance(item, bool) or item is None:
            return item
        try:
            return float(item)
        except (TypeError, ValueError):
            return item

    return canonical(value) == canonical(default)


def shown_value(value: Any) -> str:
    """A setting's value as the command line writes it (None: none; a flag: nothing)."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(shown_value(item) for item in value)
    if isinstance(value, bool):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def method_refusal(method: str, name: str, value: Any, given: str) -> str | None:
    """Why ``method`` cannot honour a setting given explicitly; None when it can.

    The one rule of which settings a method takes, for every front end: ``make_config``
    (command line, ``--config`` YAML, batch studies) asks it about the values given,
    ``make_estimator`` (``decompose_phases``) about its keyword arguments.

    Parameters
    ----------
    method : {"smooth-nmf", "semi-nmf"}
    name : str
        Run-configuration name (``simplex``, ``lambda_L``, ``mask_energy``, ``seed``, ...).
    value : object
        The value given (None: not given, always honoured).
    given : str
        How the message shows the setting (``--simplex H``, ``simplex='H'``).

    Returns
    -------
    str or None
        One sentence naming the setting and what to do instead.
    """
    if value is None:
        return None
    if name == "init":
        if str(value).lower() in METHOD_INITS[method]:
            return None
        others = [other for other, inits in METHOD_INITS.items() if str(value).lower() in inits]
        also = f" (it is {others[0]}'s start)" if others else ""
        return f"{given}: {method} starts from {' or '.join(METHOD_INITS[method])}{also}; use one of them"
    if method == "smooth-nmf":
        return None
    if name == "backend":
        if str(value).lower() in METHOD_BACKENDS[method]:
            return None
        return (
            f"{given}: {method} runs in numpy (backend {' or '.join(METHOD_BACKENDS[method])}); the "
            "numba and GPU backends serve method smooth-nmf only"
        )
    if name == "solver":
        if str(value).lower() in METHOD_SOLVERS[method]:
            return None
        solvers = " or ".join(METHOD_SOLVERS[method])
        return f"{given}: {method} takes solver {solvers}; use one of them, or method smooth-nmf"
    if name == "mask_energy":
        return (
            f"{given}: {method} cannot leave channels out of the fit (smooth-nmf can); crop the "
            "energy range instead (energy_range), or use method smooth-nmf"
        )
    default = method_defaults(method).get(name, ESTIMATOR_DEFAULTS.get(name))
    if name in SEMI_NMF_SETTINGS or name not in ESTIMATOR_DEFAULTS or _same(value, default):
        return None
    if name == "simplex":
        return (
            f"{given}: {method} fits signed maps, which no simplex constrains (its default: none); "
            "leave it out, or use method smooth-nmf"
        )
    if name == "beta_loss":
        return (
            f"{given}: {method} fits the Frobenius loss only (its default); leave it out, or use "
            "method smooth-nmf"
        )
    return (
        f"{given} applies to method smooth-nmf only; under {method} leave it out (its value "
        f"there: {shown_value(default)}), or use method smooth-nmf"
    )
