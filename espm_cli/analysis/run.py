"""One decomposition run, from a configuration dict to the files on disk.

Used by ``espm decompose`` and by every run of ``espm batch`` (in worker processes),
so it imports no click: errors are ValueError / OSError subclasses with one clear
sentence, which the commands turn into one-line messages. The warnings of the workflow
(:class:`EspmWarning`) become log records here, and are kept in ``RunOutcome.notes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .defaults import DEFAULT_METHOD
from .notices import EspmWarning
from .run_config import DEFAULT_CONFIG, PRESENTATION_KEYS, RunConfig, as_dict, make_config  # noqa: F401
from .run_config import config_hash as _config_hash

if TYPE_CHECKING:
    from ..io import AcquisitionParameters, DecompositionResult, SpectrumImage
    from ..physics import EDXModel
    from ..solver import SmoothNMF
    from .window import FitWindow

logger = logging.getLogger(__name__)

REPORT_FILES = ("maps.png", "spectra.png", "composition.png", "convergence.png", "composition.csv")


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
    notes: list = dataclasses.field(default_factory=list)
    #: (image, window, model) as the run read and fitted them, for fits that follow on the
    #: same data (the held-out folds of ``espm select-k``): the file is not read twice
    loaded: tuple | None = None


def full_config(config: Mapping[str, Any]) -> RunConfig:
    """The checked, frozen configuration: defaults updated with ``config``.

    Raises
    ------
    ValueError
        (:class:`~.run_config.ConfigError`) An unknown key or a bad value.
    """
    return config if isinstance(config, RunConfig) else make_config(config)


def config_hash(config: Mapping[str, Any], input_sha256: str) -> str:
    """Hash of what determines a result: the input's bytes and the fit settings."""
    return _config_hash(full_config(config), input_sha256)


def default_output_dir(input_path: str | Path) -> Path:
    """``<stem>_espm/`` beside the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}_espm")


def result_path(config: Mapping[str, Any]) -> Path:
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


def run_acquisition(image: SpectrumImage, config: Mapping[str, Any]) -> AcquisitionParameters:
    """The image's acquisition parameters with the run's values put in."""
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


def prepare(image: SpectrumImage, config: Mapping[str, Any]) -> tuple[FitWindow, EDXModel | None]:
    """The fit window and model of a run: ``(FitWindow, EDXModel or None)``."""
    from ..physics import EnergyAxis
    from .window import choose_fit_window

    axis = EnergyAxis(image.energy_offset_keV, image.energy_scale_keV, image.n_channels)
    return choose_fit_window(
        axis,
        run_acquisition(image, config),
        physics=not config["no_physics"],
        cut_low=config["energy_range"] is None,
        elements=config["elements"],
        ignored_elements=config["ignore_elements"] or (),
        source=image.path.name,
    )


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
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
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


def fit(
    image: SpectrumImage,
    model: EDXModel | None,
    config: Mapping[str, Any],
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[SmoothNMF, float, bool]:
    """Run SmoothNMF on the image (already cut to the fit window).

    ``should_stop()`` is asked after each iteration (as Ctrl-C is): True stops the fit.

    Returns
    -------
    (estimator, seconds, interrupted)
    """
    from sklearn.exceptions import ConvergenceWarning

    from .decomposition import fit_matrix, make_estimator, solver_arguments

    arguments = solver_arguments(config)
    if config.get("mask_energy"):
        arguments["mask"] = energy_mask(image.energy, config["mask_energy"])
    estimator = make_estimator(
        int(config["n_components"]),
        model,
        image.shape_2d,
        method=config.get("method", DEFAULT_METHOD),
        **arguments,
    )
    interrupt = _StopOnInterrupt()
    context: contextlib.AbstractContextManager[_StopOnInterrupt] = interrupt
    if solver_accepts_callback() and "callback" in estimator.get_params():

        def callback(n_iter, losses_row):
            if progress is not None:
                progress(n_iter, losses_row)
            if should_stop is not None and should_stop():
                interrupt.requested = True
            return interrupt.requested

        estimator.set_params(callback=callback)
    else:  # without a per-iteration hook, Ctrl-C can only abort
        context = contextlib.nullcontext(interrupt)
    with context as state:
        logger.info(
            "fitting %d phases to %d pixels x %d channels (%s)",
            estimator.n_components,
            image.n_pixels,
            image.n_channels,
            describe_method(config),
        )
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # check_image said it in the command line's words
            warnings.filterwarnings("ignore", message="X holds non-integer values")
            if config.get("scheduler") or config.get("workers"):
                with _cluster_client(config) as client:
                    from ..solver.distributed import fit_distributed

                    fit_distributed(estimator, fit_matrix(image.counts), client)
            else:
                estimator.fit(fit_matrix(image.counts))
        seconds = time.perf_counter() - started
    return estimator, seconds, state.requested


def describe_method(config: Mapping[str, Any]) -> str:
    """The method of a run and the loss and constraint it fits, for the log.

    semi-nmf's own defaults (no simplex, the Frobenius loss) are stated, not implied.
    """
    method = config.get("method", DEFAULT_METHOD)
    loss = config.get("beta_loss")
    loss = f"β = {loss:g}" if isinstance(loss, (int, float)) else f"{loss} loss"
    if method == "semi-nmf":
        return (
            f"semi-nmf: nonnegative spectra, signed maps, no simplex, {loss}, solver {config['solver']}, "
            f"start {config.get('init')}"
        )
    return f"{method}: {loss}, simplex {config['simplex']}, solver {config['solver']}"


def accepts_signed_data(config: Mapping[str, Any]) -> bool:
    """Whether the run's loss is defined for negative values: semi-NMF and the Frobenius
    loss are; KL (Poisson counts) and the other β-divergences are not."""
    return config.get("method", DEFAULT_METHOD) == "semi-nmf" or str(config.get("beta_loss")).lower() in (
        "frobenius",
        "2",
        "2.0",
    )


@contextlib.contextmanager
def _cluster_client(config: Mapping[str, Any]) -> Iterator[Any]:
    """A dask.distributed client: of ``--scheduler``, or of a LocalCluster of ``--workers``."""
    try:
        import distributed
    except ImportError:
        raise RunFailed(
            "--scheduler and --workers need dask.distributed: pip install 'espm-cli[distributed]'"
        ) from None
    if config.get("scheduler"):
        try:
            client = distributed.Client(config["scheduler"], timeout="20s")
        except (OSError, TimeoutError) as error:
            raise RunFailed(f"cannot reach the scheduler {config['scheduler']} ({error})") from None
        with client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=int(config["workers"]), threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def energy_mask(energy: Any, windows: Any) -> np.ndarray:
    """Channels (True: left out of the fit) inside any of the (LOW, HIGH) keV windows.

    Raises
    ------
    RunFailed
        When the windows leave no channel of the fit window.
    """
    energy = np.asarray(energy, dtype=np.float64)
    mask = np.zeros(energy.shape, bool)
    for low, high in windows:
        mask |= (energy >= low) & (energy <= high)
    if mask.all():
        raise RunFailed(
            f"--mask-energy leaves none of the {energy.size} channels of the fit "
            f"window {energy[0]:.3g}-{energy[-1]:.3g} keV; mask less"
        )
    if mask.any():
        logger.info("leaving %d channels out of the fit (--mask-energy)", int(mask.sum()))
    return mask


def _acquisition_dict(model, image) -> dict:
    from .decomposition import model_acquisition

    return {**image.acquisition.as_dict(), **model_acquisition(model)}


def make_result(
    image: SpectrumImage,
    window: FitWindow,
    model: EDXModel | None,
    estimator: SmoothNMF,
    config: Mapping[str, Any],
    seconds: float,
    interrupted: bool,
    input_sha256: str,
    channel_totals: np.ndarray,
) -> DecompositionResult:
    """The DecompositionResult of a run (NaN refused), with the run's provenance."""
    from .decomposition import assemble_result

    fitted = image.select_channels(window.start, window.stop) if not window.is_whole_axis else image
    result = assemble_result(
        energy=fitted.energy,
        window=window,
        model=model,
        estimator=estimator,
        channel_totals=channel_totals,
        n_pixels=image.n_pixels,
        shape_2d=image.shape_2d,
        mean_spectrum=fitted.mean_spectrum(),
        fit_seconds=seconds,
        interrupted=interrupted,
        acquisition={**_acquisition_dict(model, fitted), "processing": fitted.processing},
        pixel_size=image.pixel_size,
        pixel_unit=image.pixel_unit,
        advice="cli",
    )
    return dataclasses.replace(
        result,
        config=as_dict(config),
        config_hash=config_hash(config, input_sha256),
        input_path=str(image.path),
        input_sha256=input_sha256,
        versions=_versions(),
    )


def values_used(config: Mapping[str, Any], model: EDXModel | None, target: Path) -> dict:
    """run.yaml: the configuration with the values the run used in place of "from the metadata".

    Elements, beam energy and detector and sample parameters read from the file are
    written out, so that the file reproduces the run without the input's metadata.
    """
    values = {key: value for key, value in as_dict(config).items() if key != "overwrite"}
    values["output_dir"] = str(target.parent.resolve())
    if model is not None:
        values.update(
            elements=list(model.elements),
            beam_energy=float(model.beam_energy_keV),
            elevation=float(model.detector.elevation_deg),
            azimuth=float(model.detector.azimuth_deg),
            mnka_fwhm=float(model.detector.mnka_fwhm_eV),
            tilt=float(model.sample.tilt_deg),
        )
        if model.sample.thickness_nm and model.sample.density_g_cm3:
            values.update(
                thickness=float(model.sample.thickness_nm), density=float(model.sample.density_g_cm3)
            )
    return values


@contextlib.contextmanager
def _warnings_to_log(notes: list):
    """EspmWarnings become log warnings (stderr on the command line) and notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EspmWarning)
        try:
            yield
        finally:
            seen = set()  # each distinct warning once: a fit may raise the same one per pixel
            for warning in caught:
                key = (warning.category, str(warning.message), warning.filename, warning.lineno)
                if key in seen:
                    continue
                seen.add(key)
                if issubclass(warning.category, EspmWarning):
                    notes.append(str(warning.message))
                    logger.warning("%s", warning.message)
                else:
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )


def read_image(config: Mapping[str, Any], *, lazy: bool = False):
    """The spectrum image of a run configuration: its file, crop, binning and energy range,
    the cheap header checks first, signed values where the run's loss takes them."""
    from ..io import load_spectrum_image
    from .input_checks import header_checker

    return load_spectrum_image(
        config["file"],
        crop=config["crop"],
        bin_factor=int(config["bin"]),
        energy_range=config["energy_range"],
        check_header=header_checker(config),
        signed=accepts_signed_data(config),
        lazy=lazy,
    )


def run_decomposition(
    config: Mapping[str, Any],
    progress: Callable | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    write_to: str | Path | None = None,
) -> RunOutcome:
    """Load, build G, fit, write ``<stem>.h5``, the PNGs, composition.csv and run.yaml.

    Parameters
    ----------
    config : dict or RunConfig
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

    from ..io import file_sha256, write_result, write_text_atomic
    from ..report import write_report

    config = full_config(config)
    if config["file"] is None:
        raise ValueError("no input file given")
    target = result_path(config)
    check_output_folder(target.parent)
    if target.exists() and not config["overwrite"]:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")

    from .input_checks import check_image, check_truth_file, describe_grid

    if config.get("scheduler") and config.get("workers"):
        from ..io import ProcessingOptionError

        raise ProcessingOptionError(
            "scheduler",
            "--scheduler and --workers exclude each other: use an existing cluster or start a local one",
        )
    truth = check_truth_file(config["truth"]) if config["truth"] else None
    image = read_image(config, lazy=bool(config.get("lazy")))
    k = int(config["n_components"])
    if k > image.n_pixels:
        from ..io import ProcessingOptionError

        raise ProcessingOptionError(
            "n_components",
            f"n_components={k} is larger than the {image.n_pixels} pixels of the image "
            f"({describe_grid(*image.shape_2d)} after cropping and binning)",
        )
    check_image(image, config, truth)
    notes: list = []
    with _warnings_to_log(notes):
        window, model = prepare(image, config)
        channel_totals = (
            image.mean_spectrum() * image.n_pixels
            if image.is_lazy
            else np.asarray(image.counts.sum(axis=0, dtype=np.float64)).ravel()
        )
        fitted = image if window.is_whole_axis else image.select_channels(window.start, window.stop)
        estimator, seconds, interrupted = fit(fitted, model, config, progress, should_stop)
        result = make_result(
            image,
            window,
            model,
            estimator,
            config,
            seconds,
            interrupted,
            file_sha256(image.path),
            channel_totals,
        )
        if config.get("uncertainty") and not interrupted:
            from .uncertainty import bootstrap_uncertainty, with_uncertainty

            result = with_uncertainty(
                result, bootstrap_uncertainty(estimator, model, result.detected, seed=int(config["seed"]))
            )

    folder = Path(write_to) if write_to is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    files = write_report(result, folder, log_spectra=bool(config["log_spectra"]))
    files.append(
        write_text_atomic(
            folder / "run.yaml",
            "# espm decompose --config run.yaml reproduces this run\n"
            + yaml.safe_dump(values_used(config, model, target), sort_keys=False),
        )
    )
    # the result file last: where it exists, the run's files are all there
    files.insert(0, write_result(result, folder / target.name))
    summary = {
        "name": image.path.name,
        "shape_2d": image.shape_2d,
        "n_channels": fitted.n_channels,
        "counts_per_pixel": fitted.total_counts / fitted.n_pixels,
        "nonzero_fraction": fitted.nonzero_fraction,
    }
    return RunOutcome(
        result=result,
        output_dir=folder,
        files=files,
        image_summary=summary,
        interrupted=interrupted,
        notes=notes,
        loaded=(image, window, model),
    )
