"""One decomposition run, from a configuration dict to the files on disk.

Used by ``espm decompose`` and by every run of ``espm batch`` (in worker processes),
so it imports no click: errors are ValueError / OSError subclasses with one clear
sentence, which the commands turn into one-line messages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .run_config import OPTIONS, RunConfig, as_dict, make_config
from .run_config import config_hash as _config_hash

logger = logging.getLogger(__name__)

#: Every key a run configuration holds, with its default (from the option table).
DEFAULT_CONFIG: dict[str, Any] = {"file": None, **{option.name: option.default for option in OPTIONS}}
#: Keys that change where or how results are shown, not the result itself.
PRESENTATION_KEYS = tuple(option.name for option in OPTIONS if not option.changes_result)
REPORT_FILES = ("maps.png", "spectra.png", "composition.png", "convergence.png", "composition.csv")


#: A phase whose largest element weight is below this share of the largest element weight
#: of all phases has no element lines: its composition is NaN (not a uniform 1/n).
NO_LINES_SHARE = 1e-6


class RunFailed(ValueError):
    """A run that produced no usable result (e.g. NaN in the factors)."""


@dataclasses.dataclass
class RunOutcome:
    """What a run produced: the result, where the files are, how it went."""

    result: Any
    output_dir: Path
    files: list
    image_summary: dict
    interrupted: bool = False


def full_config(config) -> RunConfig:
    """The checked, frozen configuration: defaults updated with ``config``.

    Raises
    ------
    ValueError
        (:class:`~.run_config.ConfigError`) An unknown key or a bad value.
    """
    return config if isinstance(config, RunConfig) else make_config(config)


def config_hash(config, input_sha256: str) -> str:
    """Hash of what determines a result: the input's bytes and the fit settings."""
    return _config_hash(full_config(config), input_sha256)


def default_output_dir(input_path: str | Path) -> Path:
    """``<stem>_espm/`` beside the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}_espm")


def result_path(config: dict) -> Path:
    """The HDF5 result file a configuration writes."""
    config = full_config(config)
    folder = Path(config["output_dir"]) if config["output_dir"] else default_output_dir(config["file"])
    return folder / f"{Path(config['file']).stem}.h5"


def check_output_folder(folder: Path) -> None:
    """Refuse a folder that cannot be created or written (without creating it)."""
    import os

    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"output directory {folder} is not writable")


def _acquisition(image, config: dict):
    return image.acquisition.replace(
        elements=config["elements"],
        beam_energy_keV=config["beam_energy"],
        elevation_deg=config["elevation"],
        azimuth_deg=config["azimuth"],
        tilt_deg=config["tilt"],
        mnka_fwhm_eV=config["mnka_fwhm"],
        thickness_nm=config["thickness"],
        density_g_cm3=config["density"],
    )


#: Without --energy-range, physics fits start here: below lie the detector's zero
#: (strobe) peak and noise, which no X-ray line or continuum explains.
DEFAULT_LOW_KEV = 0.2


def physics_window(image, acquisition, config: dict):
    """The channels a physics fit uses when no --energy-range is given.

    From ``DEFAULT_LOW_KEV`` up to the beam energy (no X-rays lie above it).
    """
    if config["no_physics"] or config["energy_range"] is not None:
        return image
    energy = image.energy
    keep = energy >= DEFAULT_LOW_KEV
    if acquisition.beam_energy_keV is not None:
        keep &= energy <= acquisition.beam_energy_keV
    channels = np.flatnonzero(keep)
    if channels.size < 2:
        return image
    start, stop = int(channels[0]), int(channels[-1]) + 1
    if (start, stop) != (0, image.n_channels):
        image = image.select_channels(start, stop)
        logger.info("fitting %.3f to %.3f keV (set --energy-range to change)",
                    image.energy[0], image.energy[-1])
    return image


def covered_channels(image, model):
    """Cut leading/trailing channels where G is all zero (the model cannot explain counts there)."""
    covered = np.flatnonzero(model.G.sum(axis=1) > 0)
    if covered.size < 2 or (covered[0] == 0 and covered[-1] == image.n_channels - 1):
        return image
    logger.info("leaving out channels outside %.3f to %.3f keV: the model has no intensity there",
                image.energy[covered[0]], image.energy[covered[-1]])
    return image.select_channels(int(covered[0]), int(covered[-1]) + 1)


def build_model(image, acquisition, config: dict):
    """The EDXModel of the run (None with ``no_physics``)."""
    if config["no_physics"]:
        return None
    from ..physics import Detector, EDXModel, EnergyAxis, Sample, elements_with_lines

    elements = list(acquisition.elements)
    if not elements:
        raise ValueError(
            f"{image.path.name} lists no elements in its metadata; name them with "
            "--elements (e.g. --elements Fe,Pt,O) or use --no-physics")
    if acquisition.beam_energy_keV is None:
        raise ValueError(f"{image.path.name} has no beam energy in its metadata; give --beam-energy (keV)")
    axis = EnergyAxis(image.energy_offset_keV, image.energy_scale_keV, image.n_channels)
    if config["elements"] is None:
        # metadata often lists elements whose lines the axis does not reach: leave them out
        usable = elements_with_lines(axis, elements, acquisition.beam_energy_keV)
        dropped = sorted(set(elements) - set(usable))
        if dropped:
            from .input_checks import explain_dropped_elements

            logger.warning("%s", explain_dropped_elements(image, dropped, acquisition.beam_energy_keV))
        elements = usable or elements
    detector_args = {name: value for name, value in (
        ("mnka_fwhm_eV", acquisition.mnka_fwhm_eV), ("elevation_deg", acquisition.elevation_deg),
        ("azimuth_deg", acquisition.azimuth_deg)) if value is not None}
    sample_args = {"tilt_deg": acquisition.tilt_deg or 0.0}
    if acquisition.thickness_nm and acquisition.density_g_cm3:
        sample_args.update(thickness_nm=acquisition.thickness_nm, density_g_cm3=acquisition.density_g_cm3)
    elif acquisition.thickness_nm:
        logger.warning("thickness given without density: no self-absorption correction")
    elif acquisition.bulk_specimen:
        sample_args["bulk"] = True
        logger.info("SEM specimen without a film thickness: bulk self-absorption")
    return EDXModel(axis, elements, acquisition.beam_energy_keV, detector=Detector(**detector_args),
                    sample=Sample(**sample_args), ignored_elements=tuple(config["ignore_elements"] or ()))


def _versions() -> dict:
    import importlib.metadata
    import platform

    from .. import __version__

    versions = {"espm_cli": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "numba", "hyperspy", "exspy", "rosettasciio", "h5py"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


class _StopOnInterrupt:
    """While active, Ctrl-C asks the fit to stop after the current iteration.

    A second Ctrl-C raises KeyboardInterrupt as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        # a process that ignores SIGINT (a batch worker: its parent decides) keeps ignoring it
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("interrupted: stopping after this iteration and writing the current result")

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def solver_accepts_callback() -> bool:
    """Whether SmoothNMF takes a per-iteration ``callback``."""
    from ..solver import SmoothNMF

    return "callback" in SmoothNMF().get_params()


def fit(image, model, config: dict, progress: Callable | None = None,
        should_stop: Callable[[], bool] | None = None):
    """Run SmoothNMF on the image; return (estimator, seconds, interrupted).

    ``should_stop()`` is asked after each iteration (as Ctrl-C is): True stops the fit.
    """
    from sklearn.exceptions import ConvergenceWarning

    from ..solver import SmoothNMF

    simplex = None if str(config["simplex"]).lower() == "none" else config["simplex"]
    estimator = SmoothNMF(
        int(config["n_components"]), G=model, lambda_L=float(config["lambda_L"]), mu=float(config["mu"]),
        epsilon_reg=float(config["epsilon_reg"]), simplex=simplex, shape_2d=image.shape_2d,
        init=config["init"], max_iter=int(config["max_iter"]), tol=float(config["tol"]),
        random_state=config["seed"],
    )
    interrupt = _StopOnInterrupt()
    if solver_accepts_callback():
        def callback(n_iter, losses_row):
            if progress is not None:
                progress(n_iter, losses_row)
            if should_stop is not None and should_stop():
                interrupt.requested = True
            return interrupt.requested
        estimator.set_params(callback=callback)
    else:  # without a per-iteration hook, Ctrl-C can only abort
        interrupt = contextlib.nullcontext(interrupt)
    with interrupt as state:
        logger.info("fitting %d phases to %d pixels x %d channels", estimator.n_components,
                    image.n_pixels, image.n_channels)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # check_image said it in the command line's words
            warnings.filterwarnings("ignore", message="X holds non-integer values")
            estimator.fit(image.counts)
        seconds = time.perf_counter() - started
    return estimator, seconds, state.requested


def make_result(image, model, estimator, config: dict, seconds: float, interrupted: bool, input_sha256: str):
    """Assemble the DecompositionResult of a fitted estimator (NaN refused)."""
    from ..io import DecompositionResult

    W, H = np.asarray(estimator.W_, dtype=np.float64), np.asarray(estimator.H_, dtype=np.float64)
    losses = np.asarray(estimator.losses_, dtype=np.float64)
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(H)) and np.all(np.isfinite(losses))):
        raise RunFailed("the fit produced NaN or infinite values; nothing was written "
                        "(try another --seed, --init random, or smaller --lambda-L / --mu)")
    G = np.asarray(estimator.G_, dtype=np.float64)
    k = W.shape[1]
    if model is not None:
        composition = model.composition(W)
        atomic, elements = composition.atomic_percent.copy(), list(composition.elements)
        # a phase whose element rows all sit at the lower bound has no composition
        element_rows = W[~model.continuum_mask]
        no_lines = element_rows.max(axis=0) <= NO_LINES_SHARE * max(float(element_rows.max()), 1e-300)
        atomic[no_lines] = np.nan
        labels = list(model.labels)
        lines = [{"element": l.element, "line": l.name, "energy_keV": float(l.energy_keV),
                  "weight": float(l.weight)} for l in model.lines]
    else:
        atomic, elements, labels, lines = np.zeros((k, 0)), [], [f"channel_{i}" for i in range(G.shape[1])], []
    params = {key: value for key, value in estimator.get_params().items()
              if key not in ("G", "callback", "fixed_W", "fixed_H", "G_continuum")}
    return DecompositionResult(
        energy=image.energy, G=G, G_labels=labels, W=W,
        maps=H.reshape(k, *image.shape_2d),
        spectra=(G @ W).T * H.mean(axis=1)[:, None],
        mean_spectrum=image.mean_spectrum(),
        composition=atomic, elements=elements,
        loss_history=losses, loss_names=list(estimator.loss_names_),
        n_iter=int(estimator.n_iter_), converged=bool(estimator.converged_) and not interrupted,
        fit_seconds=float(seconds), config=as_dict(config),
        config_hash=config_hash(config, input_sha256),
        input_path=str(image.path), input_sha256=input_sha256,
        estimator_params=params, versions=_versions(),
        acquisition={**_acquisition_dict(model, image), "processing": image.processing},
        pixel_size=image.pixel_size, pixel_unit=image.pixel_unit, lines=lines,
    )


def values_used(config, model, target: Path) -> dict:
    """run.yaml: the configuration with the values the run used in place of "from the metadata".

    Elements, beam energy and detector and sample parameters read from the file are
    written out, so that the file reproduces the run without the input's metadata.
    """
    values = {key: value for key, value in as_dict(config).items() if key != "overwrite"}
    values["output_dir"] = str(target.parent.resolve())
    if model is not None:
        values.update(elements=list(model.elements), beam_energy=float(model.beam_energy_keV),
                      elevation=float(model.detector.elevation_deg),
                      azimuth=float(model.detector.azimuth_deg),
                      mnka_fwhm=float(model.detector.mnka_fwhm_eV),
                      tilt=float(model.sample.tilt_deg))
        if model.sample.thickness_nm and model.sample.density_g_cm3:
            values.update(thickness=float(model.sample.thickness_nm),
                          density=float(model.sample.density_g_cm3))
    return values


def _acquisition_dict(model, image) -> dict:
    out = image.acquisition.as_dict()
    if model is not None:
        out.update(elements=list(model.elements), beam_energy_keV=model.beam_energy_keV,
                   elevation_deg=model.detector.elevation_deg, azimuth_deg=model.detector.azimuth_deg,
                   mnka_fwhm_eV=model.detector.mnka_fwhm_eV, tilt_deg=model.sample.tilt_deg,
                   thickness_nm=model.sample.thickness_nm, density_g_cm3=model.sample.density_g_cm3)
    return out


def run_decomposition(config, progress: Callable | None = None, *,
                      should_stop: Callable[[], bool] | None = None,
                      write_to: str | Path | None = None) -> RunOutcome:
    """Load, build G, fit, write ``<stem>.h5``, the PNGs, composition.csv and run.yaml.

    Parameters
    ----------
    config : dict
        Decompose options by name (see ``DEFAULT_CONFIG``); ``file`` is required.
    progress : callable, optional
        ``progress(n_iter, losses_row)`` after each iteration (when the solver supports it).
    should_stop : callable, optional
        Asked after each iteration; True stops the fit, which is written as interrupted.
    write_to : path, optional
        Write the files into this folder instead of the configured one (a staging folder
        the caller moves into place); run.yaml still names the configured folder.

    Returns
    -------
    RunOutcome

    Raises
    ------
    ValueError, OSError
        Bad input, an existing result without ``overwrite``, a non-writable folder,
        or a fit that produced NaN (:class:`RunFailed`); nothing is written then.
    """
    import yaml

    from ..io import file_sha256, load_spectrum_image, write_result, write_text_atomic
    from ..report import write_report

    config = full_config(config)
    if config["file"] is None:
        raise ValueError("no input file given")
    target = result_path(config)
    check_output_folder(target.parent)
    if target.exists() and not config["overwrite"]:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")

    from .input_checks import check_image, check_truth_file, describe_grid, header_checker

    truth = check_truth_file(config["truth"]) if config["truth"] else None
    image = load_spectrum_image(config["file"], crop=config["crop"], bin_factor=int(config["bin"]),
                                energy_range=config["energy_range"], check_header=header_checker(config))
    k = int(config["n_components"])
    if k > image.n_pixels:
        from ..io import ProcessingOptionError

        raise ProcessingOptionError("n_components", f"n_components={k} is larger than the {image.n_pixels} pixels of the image "
                         f"({describe_grid(*image.shape_2d)} after cropping and binning)")
    check_image(image, config, truth)
    acquisition = _acquisition(image, config)
    image = physics_window(image, acquisition, config)
    model = build_model(image, acquisition, config)
    if model is not None:
        trimmed = covered_channels(image, model)
        if trimmed is not image:
            image, model = trimmed, build_model(trimmed, acquisition, config)
    estimator, seconds, interrupted = fit(image, model, config, progress, should_stop)
    result = make_result(image, model, estimator, config, seconds, interrupted, file_sha256(image.path))

    folder = Path(write_to) if write_to is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    files = write_report(result, folder, log_spectra=bool(config["log_spectra"]))
    files.append(write_text_atomic(folder / "run.yaml",
                                   "# espm decompose --config run.yaml reproduces this run\n"
                                   + yaml.safe_dump(values_used(config, model, target), sort_keys=False)))
    # the result file last: where it exists, the run's files are all there
    files.insert(0, write_result(result, folder / target.name))
    summary = {"name": image.path.name, "shape_2d": image.shape_2d, "n_channels": image.n_channels,
               "counts_per_pixel": image.total_counts / image.n_pixels,
               "nonzero_fraction": image.nonzero_fraction}
    return RunOutcome(result=result, output_dir=folder, files=files,
                      image_summary=summary, interrupted=interrupted)
