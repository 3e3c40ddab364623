"""The estimator's settings, the data it sees, and the one result type of a fit.

Both front ends go through these: ``espm decompose`` (``analysis.run``) and
``decompose_phases`` (the hyperspy signal types) build the estimator with
:func:`make_estimator`, hand it :func:`fit_matrix` of the counts in the fit window, and
turn the fitted estimator into a :class:`espm_cli.io.DecompositionResult` with
:func:`assemble_result` (phases described, residual peaks found).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse

from .defaults import DEFAULT_METHOD, ESTIMATOR_ARGUMENT, ESTIMATOR_DEFAULTS, method_defaults, method_refusal
from .notices import EspmWarning
from .phases import describe_phases
from .residuals import residual_peaks
from .window import check_window_share

if TYPE_CHECKING:
    from ..io import DecompositionResult
    from ..physics import EDXModel
    from ..solver import SemiNMF, SmoothNMF
    from .residuals import ResidualPeak
    from .window import FitWindow

logger = logging.getLogger(__name__)

#: Above this nonzero fraction the counts go to the solver dense, below as CSR (the
#: same rule as the file reader, so both front ends hand the solver the same thing).
DENSE_NONZERO_FRACTION = 0.3
#: SmoothNMF arguments the workflow sets itself.
SET_BY_WORKFLOW = ("G", "G_continuum", "shape_2d", "n_components")


def solver_arguments(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run-configuration estimator settings -> SmoothNMF keyword arguments.

    Parameters
    ----------
    config : dict
        Has the keys of ``ESTIMATOR_DEFAULTS`` (other keys are ignored).
    """
    arguments = {}
    for key in ESTIMATOR_DEFAULTS:
        if key == "n_components":
            continue
        arguments[ESTIMATOR_ARGUMENT.get(key, key)] = config.get(key, ESTIMATOR_DEFAULTS[key])
    if arguments.get("n_init") is None:
        arguments["n_init"] = "auto"
    return arguments


def _canonical_simplex(value):
    if value is None or str(value).lower() == "none":
        return None
    return str(value).upper()


def make_estimator(
    n_components: int,
    model: EDXModel | None,
    shape_2d: tuple[int, int],
    *,
    channels: slice | None = None,
    method: str = DEFAULT_METHOD,
    **arguments: Any,
) -> SmoothNMF | SemiNMF:
    """SmoothNMF (or SemiNMF) with the workflow's defaults for every argument not given.

    Parameters
    ----------
    n_components : int
    model : EDXModel or None
        Its G (None: plain NMF).
    shape_2d : (int, int)
    channels : slice, optional
        Rows of the model's G that the fit uses (a model built on a wider axis).
    method : {"smooth-nmf", "semi-nmf"}
        "semi-nmf": :class:`espm_cli.solver.SemiNMF` with the model's G, taking
        ``SEMI_NMF_SETTINGS``, with its own defaults (no simplex, the Frobenius loss); a
        setting given that it cannot honour is refused (:func:`.defaults.method_refusal`).
    **arguments
        SmoothNMF arguments (``lambda_L``, ``mu``, ``simplex``, ``random_state``, ...).

    Returns
    -------
    espm_cli.solver.SmoothNMF or espm_cli.solver.SemiNMF
    """
    from ..solver import SmoothNMF

    clash = [name for name in SET_BY_WORKFLOW if name in arguments]
    if clash:
        raise ValueError(
            f"{clash[0]} cannot be passed here: the workflow sets it from the data "
            "(give your own model to set G)"
        )
    if method == "semi-nmf":
        _refuse_for_method(method, arguments)
    settings = solver_arguments(method_defaults(method))
    settings.update(arguments)
    settings["simplex"] = _canonical_simplex(settings["simplex"])
    for name, kind in (
        ("lambda_L", float),
        ("mu", float),
        ("epsilon_reg", float),
        ("tol", float),
        ("max_iter", int),
    ):
        if isinstance(settings.get(name), (int, float, np.number)) and not isinstance(settings[name], bool):
            settings[name] = kind(settings[name])
    physics = {}
    if model is not None:
        G = np.asarray(model.G)
        physics = {
            "G": np.ascontiguousarray(G if channels is None else G[channels]),
            "G_continuum": np.asarray(model.continuum_mask),
        }
    if method == "semi-nmf":
        return _semi_nmf(int(n_components), physics.get("G"), settings)
    return SmoothNMF(int(n_components), shape_2d=tuple(int(n) for n in shape_2d), **physics, **settings)


#: SmoothNMF argument names -> run-configuration names, where they differ.
_RUN_CONFIG_NAME = {
    **{argument: name for name, argument in ESTIMATOR_ARGUMENT.items()},
    "mask": "mask_energy",
}


def _refuse_for_method(method, arguments):
    """Refuse an argument the method cannot honour (:func:`.defaults.method_refusal`)."""
    from ..io import ProcessingOptionError

    for name, value in arguments.items():
        if name == "callback":
            continue
        if name == "n_init" and value == "auto":  # the run configuration's None
            value = None
        shown = "a mask" if name == "mask" else f"{name}={value!r}"
        reason = method_refusal(method, _RUN_CONFIG_NAME.get(name, name), value, shown)
        if reason is not None:  # a usage error of --method (exit 2 on the command line)
            raise ProcessingOptionError("method", reason)


def _semi_nmf(n_components, G, settings):
    """SemiNMF from the workflow's settings (checked by ``_refuse_for_method``)."""
    from ..solver import SemiNMF

    return SemiNMF(
        n_components,
        G=G,
        solver=settings["solver"],
        l1=float(settings["l1"]),
        max_iter=int(settings["max_iter"]),
        tol=float(settings["tol"]),
        init=str(settings["init"]).lower(),
        random_state=settings["random_state"],
    )


def fit_matrix(counts: Any) -> np.ndarray | scipy.sparse.csr_matrix:
    """The counts (n_pixels, n_channels) in the form the solver gets from every front end.

    CSR of the nonzeros when sparse (EDX counts usually are), dense otherwise; integer
    counts stay integers. A dask array (``--lazy``) is handed over as it is: the solver
    reads it block by block and keeps only the nonzeros.
    """
    if hasattr(counts, "dask"):
        return counts
    if scipy.sparse.issparse(counts):
        csr = scipy.sparse.csr_matrix(counts)
        if csr.nnz > DENSE_NONZERO_FRACTION * csr.shape[0] * csr.shape[1]:
            return csr.toarray()
        return csr
    array = np.asarray(counts)
    if np.count_nonzero(array) > DENSE_NONZERO_FRACTION * array.size:
        return array
    return scipy.sparse.csr_matrix(array)


def assemble_result(
    *,
    energy: np.ndarray,
    window: FitWindow,
    model: EDXModel | None,
    estimator: SmoothNMF,
    channel_totals: np.ndarray,
    n_pixels: int,
    shape_2d: tuple[int, int],
    mean_spectrum: np.ndarray | None = None,
    fit_seconds: float = 0.0,
    interrupted: bool = False,
    acquisition: dict | None = None,
    pixel_size: float | None = None,
    pixel_unit: str | None = None,
    advice: str = "python",
) -> DecompositionResult:
    """The :class:`espm_cli.io.DecompositionResult` of a fitted estimator.

    Describes the phases (counts, line share, detected elements, names), finds the
    residual peaks (each also warned as an :class:`EspmWarning`) and warns when the fit
    window holds a small share of the counts.

    Parameters
    ----------
    energy : ndarray (n_window,)
        Channel energies of the fit window, keV.
    window : FitWindow
    model : EDXModel or None
    estimator : fitted SmoothNMF
    channel_totals : ndarray (window.size,)
        Data counts per channel over all pixels, on the full axis.
    n_pixels : int
    shape_2d : (int, int)
    mean_spectrum : ndarray (n_window,), optional
        Of the data in the window; ``channel_totals`` in the window / n_pixels by default.
    fit_seconds : float
    interrupted : bool
    acquisition : dict, optional
    pixel_size, pixel_unit : optional
    advice : {"python", "cli"}
        How residual-peak advice names the elements option.

    Returns
    -------
    DecompositionResult

    Raises
    ------
    RunFailed
        When the fit produced NaN or infinite values.
    """
    from ..io import DecompositionResult
    from .run import RunFailed

    W = np.asarray(estimator.W_, dtype=np.float64)
    H = np.asarray(estimator.H_, dtype=np.float64)
    losses = np.asarray(estimator.losses_, dtype=np.float64)
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(H)) and np.all(np.isfinite(losses))):
        raise RunFailed(
            "the fit produced NaN or infinite values; nothing was written "
            "(try another --seed / random_state, init='random', or smaller "
            "lambda_L / mu)"
        )
    G = np.asarray(estimator.G_, dtype=np.float64)
    k = W.shape[1]
    totals = np.asarray(channel_totals, dtype=np.float64)
    share = check_window_share(totals, window, n_pixels) if model is not None else 1.0
    in_window = totals[window.start : window.stop]
    description = describe_phases(G, W, H, model)
    _warn_about_background_phases(description, H, getattr(estimator, "simplex", None))
    peaks = []
    if model is not None:
        modelled = (G @ W) @ H.sum(axis=1)
        peaks = residual_peaks(energy, in_window, modelled, model)
        for peak in peaks:
            warnings.warn(peak.message(advice), EspmWarning, stacklevel=2)
        labels = list(model.labels)
        lines = [
            {
                "element": l.element,
                "line": l.name,
                "energy_keV": float(l.energy_keV),
                "weight": float(l.weight),
            }
            for l in model.lines
        ]
    else:
        labels, lines = [f"channel_{i}" for i in range(G.shape[1])], []
    params = {
        key: value
        for key, value in estimator.get_params().items()
        if key not in ("G", "callback", "fixed_W", "fixed_H", "G_continuum", "mask")
    }
    # what the fit did beyond its parameters: the loss and scale used, what was left out,
    # and how the starts fared (in the result file's estimator_params, under "fitted")
    params["fitted"] = {
        "beta": float(getattr(estimator, "beta_", 1.0)),
        "data_scale": float(getattr(estimator, "data_scale_", 1.0)),
        "missing": dict(getattr(estimator, "missing_summary_", {}) or {}),
        "init_objectives": [float(v) for v in getattr(estimator, "init_objectives_", [])],
        "best_init": int(getattr(estimator, "best_init_", 0)),
    }
    return DecompositionResult(
        energy=np.asarray(energy, dtype=np.float64),
        G=G,
        G_labels=labels,
        W=W,
        maps=H.reshape(k, *shape_2d),
        spectra=(G @ W).T * H.mean(axis=1)[:, None],
        mean_spectrum=(in_window / max(1, n_pixels)) if mean_spectrum is None else mean_spectrum,
        composition=description.composition,
        elements=list(description.elements),
        loss_history=losses,
        loss_names=list(estimator.loss_names_),
        n_iter=int(estimator.n_iter_),
        converged=bool(estimator.converged_) and not interrupted,
        fit_seconds=float(fit_seconds),
        estimator_params=params,
        acquisition=dict(acquisition or {}),
        pixel_size=pixel_size,
        pixel_unit=pixel_unit,
        lines=lines,
        phase_names=list(description.names),
        phase_kinds=list(description.kinds),
        phase_counts=description.counts,
        line_fraction=description.line_fraction,
        detected=description.detected,
        line_counts=description.line_counts,
        detection_limit=description.detection_limit,
        residual_peaks=[peak_record(peak) for peak in peaks],
        window_share=float(share),
    )


def peak_record(peak: ResidualPeak) -> dict:
    """A ResidualPeak as the plain dict the result file keeps."""
    return {
        "energy_keV": peak.energy_keV,
        "missed_counts": peak.missed_counts,
        "sigma": peak.sigma,
        "missed_share": peak.missed_share,
        "candidates": " ".join(f"{element}_{line}" for element, line, _ in peak.candidates),
        "message": peak.message("cli"),
    }


#: Under the H simplex, a continuum or empty phase taking more of the abundance than this
#: is worth a word: it stands for pixels with few or no counts, not for a material.
BACKGROUND_ABUNDANCE_SHARE = 0.2


def _warn_about_background_phases(description, H, simplex) -> None:
    if simplex != "H":
        return
    mean = np.asarray(H, dtype=np.float64).mean(axis=1)
    total = float(mean.sum())
    for name, kind, share in zip(description.names, description.kinds, mean / max(total, 1e-300)):
        if kind != "phase" and share > BACKGROUND_ABUNDANCE_SHARE:
            if kind == "empty":
                why = (
                    "no counts: the abundances of each pixel sum to 1, so pixels with few "
                    "counts (vacuum, off the specimen) go to it"
                )
            else:
                why = (
                    "no element line above the noise: background (continuum, or lines the "
                    "model lacks: see the unexplained peaks), not a modelled material"
                )
            warnings.warn(
                f"{name} takes {100 * share:.0f} % of the abundance but has {why}; more "
                "phases (-k / n_components) or a crop leave the others to the material",
                EspmWarning,
                stacklevel=3,
            )


def model_acquisition(model: EDXModel | None) -> dict:
    """The acquisition parameters a model was built with (the result file's ``acquisition``)."""
    if model is None:
        return {}
    return {
        "elements": list(model.elements),
        "beam_energy_keV": model.beam_energy_keV,
        "elevation_deg": model.detector.elevation_deg,
        "azimuth_deg": model.detector.azimuth_deg,
        "mnka_fwhm_eV": model.detector.mnka_fwhm_eV,
        "tilt_deg": model.sample.tilt_deg,
        "thickness_nm": model.sample.thickness_nm,
        "density_g_cm3": model.sample.density_g_cm3,
    }
