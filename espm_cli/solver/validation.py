"""Checks of SmoothNMF's parameters and inputs; every failure is one clear ValueError.

Parameters are checked from one declarative table, ``PARAMETER_RULES``: name -> (test,
description of what is allowed).
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp


def _is_int(value, low=None):
    return isinstance(value, Integral) and not isinstance(value, bool) and (low is None or value >= low)


def _is_real(value, low=None, high=None, low_open=False):
    if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or value < high


def _is_mu(value):
    if _is_real(value, 0):
        return True
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return array.ndim == 1 and bool(np.all(np.isfinite(array))) and bool(np.all(array >= 0))


def _is_optional_shape(value):
    return value is None or (
        isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v, 1) for v in value)
    )


def _is_random_state(value):
    return value is None or _is_int(value, 0) or isinstance(value, np.random.Generator)


def _is_dtype(value):
    try:
        return np.dtype(value) in (np.float32, np.float64)
    except TypeError:
        return False


def _is_backend(value):
    from espm_cli.solver.backends import available_backends

    return isinstance(value, str) and value in ("auto",) + available_backends()


#: Accepted values of ``solver``: multiplicative (MM) updates, projected gradient, Adagrad.
SOLVERS = ("mu", "pgd", "adagrad")

#: Accepted values of ``init`` (the starts are described in SmoothNMF's docstring).
INIT_METHODS = ("auto", "spa", "kmeans", "nndsvda", "random", "custom")


def _is_beta_loss(value):
    from espm_cli.solver.losses import BETA_LOSS_NAMES

    return (isinstance(value, str) and value in BETA_LOSS_NAMES) or _is_real(value)


def _is_mask(value):
    if value is None:
        return True
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.dtype == bool and array.ndim in (1, 2)


PARAMETER_RULES = {
    "n_components": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "lambda_L": (lambda v: _is_real(v, 0), "a finite real number >= 0"),
    "mu": (_is_mu, "a finite real number >= 0 or a 1-D array of them, one per component"),
    "epsilon_reg": (lambda v: _is_real(v, 0, low_open=True), "a finite real number > 0"),
    "simplex": (lambda v: v is None or (isinstance(v, str) and v in ("H", "W")), 'one of "H", "W" or None'),
    "shape_2d": (_is_optional_shape, "None or a pair of positive integers (ny, nx)"),
    "init": (
        lambda v: isinstance(v, str) and v in INIT_METHODS,
        "one of " + ", ".join(f'"{name}"' for name in INIT_METHODS),
    ),
    "n_init": (lambda v: (isinstance(v, str) and v == "auto") or _is_int(v, 1), 'an integer >= 1 or "auto"'),
    "max_iter": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "tol": (lambda v: _is_real(v, 0), "a finite real number >= 0"),
    "random_state": (_is_random_state, "None, an integer >= 0 or a numpy Generator"),
    "verbose": (lambda v: _is_int(v, 0) or isinstance(v, bool), "an integer >= 0"),
    "dtype": (_is_dtype, '"float32" or "float64"'),
    "eps": (lambda v: _is_real(v, 0, 1, low_open=True), "a real number in (0, 1)"),
    "extrapolate": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "backend": (_is_backend, '"auto" or a registered backend name'),
    "callback": (lambda v: v is None or callable(v), "None or a callable(n_iter, losses_row)"),
    "beta_loss": (
        _is_beta_loss,
        '"kullback-leibler", "frobenius", "itakura-saito" or a '
        "finite real number (the β of the β-divergence)",
    ),
    "mask": (
        _is_mask,
        "None or a boolean array, True where X is missing, of shape "
        "(n_pixels, n_channels), (n_channels,), (1, n_channels) or (n_pixels, 1)",
    ),
    "normalize": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "device": (
        lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
        'None or a device name such as "cuda", "cuda:1" or "cpu"',
    ),
    "solver": (
        lambda v: isinstance(v, str) and v in SOLVERS,
        "one of " + ", ".join(f'"{name}"' for name in SOLVERS),
    ),
    "l1": (_is_mu, "a finite real number >= 0 or a 1-D array of them, one per component"),
    "learning_rate": (lambda v: _is_real(v, 0, low_open=True), "a finite real number > 0"),
}


def check_parameters(params):
    """Raise ValueError for the first parameter that breaks its rule.

    Parameters
    ----------
    params : dict
        Parameter name -> value (names missing from the table are not checked here).
    """
    for name, (is_allowed, allowed) in PARAMETER_RULES.items():
        if name in params and not is_allowed(params[name]):
            value = params[name]
            shown = (
                f"<array of shape {value.shape}, dtype {value.dtype}>"
                if isinstance(value, np.ndarray)
                else repr(value)
            )
            raise ValueError(f"{name}={shown} is not valid: it must be {allowed}.")


def has_negative(X):
    """Whether X (ndarray or scipy sparse matrix) holds a negative entry."""
    values = X.data if sp.issparse(X) else X
    return bool(values.size) and bool(values.min() < 0)


def check_counts(X, signed=False):
    """Check X (n_pixels, n_channels): 2-D, numeric, finite, nonnegative, not all zero.

    Parameters
    ----------
    X : array-like or scipy sparse matrix
    signed : bool, default False
        Accept negative values (the Frobenius loss is defined on them).

    Returns
    -------
    X : ndarray or scipy sparse matrix
        Not copied (a list becomes an array).
    """
    if not sp.issparse(X):
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_pixels, n_channels); got an array with shape "
            f"{X.shape}. Expected a 2D array; reshape your data."
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise ValueError(f"X has dtype {X.dtype}; it must hold real numbers (counts).")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X has shape {X.shape}; it needs at least one pixel (n_samples=1) and one channel.")
    values = X.data if sp.issparse(X) else X
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        raise ValueError("X contains NaN or infinity; every count must be finite.")
    if not signed and values.size and values.min() < 0:
        raise ValueError(
            f"X contains negative values (minimum {values.min()}); counts must "
            "be >= 0 (Negative values in data passed to SmoothNMF). For signed "
            "data use beta_loss='frobenius' or espm_cli.solver.SemiNMF."
        )
    if not np.any(values):
        raise ValueError("X is all zero; there is nothing to decompose.")
    return X


#: Values of X checked at once by warn_if_not_counts (bounds the temporary memory).
_COUNT_CHECK_BLOCK = 2**20


def warn_if_not_counts(X):
    """Warn (UserWarning) when X holds values that are not whole numbers.

    The KL loss is the Poisson likelihood of raw counts. Non-integer values mean the
    data were rescaled on the way, most often by hyperspy's Poisson normalisation
    (``normalize_poissonian_noise=True``, the default of exspy's EDS_TEM decomposition).

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_pixels, n_channels)
        Already checked by :func:`check_counts`.
    """
    values = X.data if sp.issparse(X) else X
    if not np.issubdtype(values.dtype, np.floating):
        return
    row_size = values.shape[1] if values.ndim == 2 else 1
    step = max(1, _COUNT_CHECK_BLOCK // max(1, row_size))
    for start in range(0, values.shape[0], step):
        block = values[start : start + step]
        fractional = block != np.round(block)
        if fractional.any():
            example = float(block[fractional].flat[0])
            warnings.warn(
                f"X holds non-integer values (e.g. {example:.4g}) but SmoothNMF's Poisson "
                "(KL) loss expects raw counts: the data were probably rescaled, most often "
                "by Poisson normalisation. In hyperspy pass "
                "normalize_poissonian_noise=False to s.decomposition (exspy's EDS_TEM "
                "signals turn it on by default), or use s.decompose_phases() of the "
                "EDS_espm_cli signal type.",
                UserWarning,
                stacklevel=3,
            )
            return
