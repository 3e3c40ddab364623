"""Error bars of a fit: a parametric bootstrap of the Poisson model at the solution.

The fitted model Y = G W H is the expected count of every entry. Each draw replaces the
data by Poisson(Y) and refits from the solution (``init="custom"`` with the fitted W and
H, the same settings: G, regularisers, simplex, masks), for a fixed number of iterations
(``tol=0``: the usual stopping test would stop a fit that starts at an optimum at once).
The error bar of each phase's composition (at.%, over the elements detected in the fit)
and of each map pixel is the bootstrap's root-mean-square deviation of the draws from the
fit, ``sqrt(mean_b (θ*_b − θ̂)²)``: its estimate of the fit's RMS error, which holds the
spread over the draws and the shift of their mean away from the fit (the bootstrap's
estimate of the bias). Why a bootstrap rather than the Fisher information, why the RMS
deviation rather than the standard deviation, and how well the 1σ intervals cover the
truth on simulated data: docs/uncertainty.md.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

#: Poisson draws of the bootstrap.
DEFAULT_DRAWS = 20
#: Iterations of each refit from the solution.
DEFAULT_REFIT_ITERATIONS = 30
#: Pixels per block when drawing the counts (a dense block of the model at a time).
_PIXEL_BLOCK = 2048


@dataclasses.dataclass(frozen=True)
class Uncertainty:
    """1σ error bars of a fit.

    Attributes
    ----------
    composition_sd : ndarray (k, n_elements)
        at.%, the bootstrap RMS deviation from the fit (:func:`rms_deviation`); NaN where
        the element is not detected in the phase.
    maps_sd : ndarray (k, n_pixels)
        Of the abundances (the same).
    W_sd : ndarray (m, k)
    method : str
    n_draws, n_iterations : int
    seconds : float
    """

    composition_sd: np.ndarray
    maps_sd: np.ndarray
    W_sd: np.ndarray
    method: str
    n_draws: int
    n_iterations: int
    seconds: float

    def record(self) -> dict:
        """How they were made (the result file's ``uncertainty`` attributes)."""
        return {
            "method": self.method,
            "n_draws": self.n_draws,
            "n_iterations": self.n_iterations,
            "seconds": self.seconds,
        }


def poisson_draw(G, W, H, rng) -> sp.csr_array:
    """Counts (n_pixels, n_channels) drawn from Poisson(G W H), as CSR."""
    B = np.asarray(G, dtype=np.float64) @ np.asarray(W, dtype=np.float64)
    Ht = np.asarray(H, dtype=np.float64).T
    blocks = []
    for start in range(0, Ht.shape[0], _PIXEL_BLOCK):
        expected = np.clip(Ht[start : start + _PIXEL_BLOCK] @ B.T, 0.0, None)
        blocks.append(sp.csr_array(rng.poisson(expected).astype(np.int32)))
    return sp.csr_array(sp.vstack(blocks, format="csr"))


def bootstrap_uncertainty(
    estimator,
    model=None,
    detected=None,
    *,
    n_draws=DEFAULT_DRAWS,
    n_iterations=DEFAULT_REFIT_ITERATIONS,
    seed=0,
) -> Uncertainty:
    """Parametric bootstrap of a fitted SmoothNMF.

    Parameters
    ----------
    estimator : fitted espm_cli.solver.SmoothNMF
    model : EDXModel or None
        For the compositions (None: no composition, an empty ``composition_sd``).
    detected : ndarray of bool (k, n_elements), optional
        Elements detected in each phase (the fit's, ``PhaseDescription.detected``); the
        compositions of every draw are taken over these.
    n_draws : int
        At least 2.
    n_iterations : int
        Iterations of each refit.
    seed : int

    Returns
    -------
    Uncertainty
    """
    from sklearn.exceptions import ConvergenceWarning

    from ..solver import SmoothNMF
    from .phases import detected_composition

    if int(n_draws) < 2:
        raise ValueError(f"n_draws={n_draws} is not allowed; a spread needs at least 2 draws")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    W, H, G = (np.asarray(a, dtype=np.float64) for a in (estimator.W_, estimator.H_, estimator.G_))
    params = estimator.get_params(deep=False)
    params.update(init="custom", n_init=1, max_iter=int(n_iterations), tol=0.0, callback=None, verbose=0)
    draws_W, draws_H, compositions = [], [], []
    for draw in range(int(n_draws)):
        counts = poisson_draw(G, W, H, rng)
        refit = SmoothNMF(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            refit.fit(counts, W=W, H=H)
        draws_W.append(np.asarray(refit.W_, dtype=np.float64))
        draws_H.append(np.asarray(refit.H_, dtype=np.float64))
        if model is not None and detected is not None:
            compositions.append(detected_composition(model, draws_W[-1], np.asarray(detected)))
        logger.debug("bootstrap draw %d/%d", draw + 1, n_draws)
    composition_sd = (
        rms_deviation(compositions, detected_composition(model, W, np.asarray(detected)))
        if compositions
        else np.zeros((W.shape[1], 0))
    )
    seconds = time.perf_counter() - started
    logger.info(
        "error bars from %d Poisson draws, %d iterations each (%.1f s)", n_draws, n_iterations, seconds
    )
    return Uncertainty(
        composition_sd=composition_sd,
        maps_sd=rms_deviation(draws_H, H),
        W_sd=rms_deviation(draws_W, W),
        method="parametric bootstrap",
        n_draws=int(n_draws),
        n_iterations=int(n_iterations),
        seconds=seconds,
    )


def rms_deviation(draws, fitted) -> np.ndarray:
    """``sqrt(mean_b (draw_b − fitted)²)`` over the first axis of ``draws``: the bootstrap
    estimate of the fit's RMS error (the draws' spread and the shift of their mean).

    NaN where the fitted value is NaN (an element not detected in a phase).
    """
    draws = np.asarray(draws, dtype=np.float64)
    return np.sqrt(np.mean((draws - np.asarray(fitted, dtype=np.float64)[None]) ** 2, axis=0))


def with_uncertainty(result, uncertainty: Uncertainty):
    """The DecompositionResult with the error bars put in."""
    k = result.n_components
    return dataclasses.replace(
        result,
        composition_sd=np.asarray(uncertainty.composition_sd, dtype=np.float64),
        maps_sd=np.asarray(uncertainty.maps_sd).reshape(k, *np.asarray(result.maps).shape[1:]),
        uncertainty=uncertainty.record(),
    )


def format_value(value, sd=None) -> str:
    """``"50.1 ± 0.6"`` (``"50.1"`` without an error bar, ``"-"`` for NaN).

    One decimal, two when the error bar is below 0.05 (``"8.09 ± 0.04"``).
    """
    if value != value:
        return "-"
    if sd is None or sd != sd:
        return f"{value:.1f}"
    digits = 2 if sd < 0.05 else 1
    return f"{value:.{digits}f} ± {sd:.{digits}f}"
