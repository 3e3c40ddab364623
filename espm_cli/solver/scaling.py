"""``normalize``: the scaling that makes the regularisation weights dose-independent.

The fit runs on X' = s X with s = k / (mean counts per observed pixel); the factor that
carries the unit of X (W, or H under ``simplex="W"``) is scaled in (starts, held entries)
and back out (results). See docs/solver.md.
"""

import numpy as np
import scipy.sparse as sp


def data_scale(X, pattern, n_components):
    """``n_components / (mean counts per observed pixel)``: the scaling of ``normalize``."""
    total = float(X.sum())
    n_pixels = X.shape[0]
    if pattern.observed_pixels is not None:
        dropped = np.flatnonzero(~pattern.observed_pixels)
        total -= float(X[dropped].sum())
        n_pixels = int(pattern.observed_pixels.sum())
    if pattern.missing is not None:
        coo = sp.coo_array(pattern.missing)
        values = X[coo.row, coo.col]
        total -= float(np.sum(np.asarray(values, dtype=np.float64)))
    if total <= 0:
        raise ValueError("X has no counts on its observed entries; there is nothing to fit.")
    return n_components * n_pixels / total


def scale_factors(W, H, scale, simplex):
    """Multiply the factor that carries the scale of X (H under simplex="W", else W)."""
    if scale == 1.0:
        return W, H
    if simplex == "W":
        return W, None if H is None else np.asarray(H) * scale
    return None if W is None else np.asarray(W) * scale, H


def scaled_settings(settings, scale):
    """Settings of the scaled problem: held entries of the scaled factor scaled too."""
    if scale == 1.0:
        return settings
    settings = dict(settings)
    name = "fixed_H" if settings["simplex"] == "W" else "fixed_W"
    if settings[name] is not None:
        fixed = settings[name]
        settings[name] = np.where(fixed >= 0, fixed * scale, fixed)
    return settings
