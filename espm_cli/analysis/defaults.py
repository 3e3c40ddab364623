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
#: SmoothNMF settings SemiNMF also takes (by SmoothNMF name); the others must keep their
#: defaults under --method semi-nmf.
SEMI_NMF_SETTINGS = ("solver", "l1", "max_iter", "tol", "random_state")

#: Run-configuration names -> SmoothNMF argument names, where they differ.
ESTIMATOR_ARGUMENT = {"seed": "random_state"}
