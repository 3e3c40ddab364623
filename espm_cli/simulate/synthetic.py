"""A synthetic EDX spectrum image with known truth: X ~ Poisson(dose * G W H)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..io.result_file import DecompositionResult, write_result
from .maps import abundance_maps
from .phases import DEFAULT_PHASES, elements_of

LOSS_NAMES = ["kl_divergence", "laplacian", "log_sparsity", "total"]


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """What to simulate.

    Attributes
    ----------
    phases : tuple of Phase
        Phase compositions; the first fills the background.
    shapes : tuple of str
        Map shape of phases 2, 3, ... (``particles``, ``layer``, ``gradient``).
    size : (int, int)
        (ny, nx) pixels.
    dose : float
        Mean counts per pixel.
    beam_energy_keV, mnka_fwhm_eV, elevation_deg, azimuth_deg, tilt_deg : float
        Microscope and detector.
    thickness_nm, density_g_cm3 : float or None
        Sample, for self-absorption (None: none).
    energy_offset_keV, energy_scale_keV : float
    n_channels : int
    continuum_fraction : float
        Share of each phase's counts in the bremsstrahlung, in [0, 1).
    pixel_size_nm : float
    seed : int or None
    """

    phases: tuple = DEFAULT_PHASES
    shapes: tuple = ()
    size: tuple = (64, 64)
    dose: float = 200.0
    beam_energy_keV: float = 200.0
    mnka_fwhm_eV: float = 130.0
    elevation_deg: float = 22.0
    azimuth_deg: float = 45.0
    tilt_deg: float = 0.0
    thickness_nm: float | None = None
    density_g_cm3: float | None = None
    energy_offset_keV: float = 0.0
    energy_scale_keV: float = 0.01
    n_channels: int = 2048
    continuum_fraction: float = 0.3
    pixel_size_nm: float = 2.0
    seed: int | None = 0

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        ny, nx = self.size
        checks = [
            ("size", min(ny, nx) >= 2, f"{ny} {nx}", "at least 2 x 2 pixels"),
            ("dose", np.isfinite(self.dose) and self.dose > 0, self.dose, "a number > 0 (counts per pixel)"),
            ("n_channels", self.n_channels >= 16, self.n_channels, "at least 16"),
            ("energy_scale_keV", self.energy_scale_keV > 0, self.energy_scale_keV, "> 0"),
            ("continuum_fraction", 0 <= self.continuum_fraction < 1, self.continuum_fraction, "in [0, 1)"),
            ("phases", len(self.phases) >= 1, len(self.phases), "at least one phase"),
            (
                "density_g_cm3",
                self.thickness_nm is None or self.density_g_cm3 is not None,
                self.density_g_cm3,
                "given with thickness_nm (g/cm^3)",
            ),
        ]
        for name, ok, value, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={value} is not allowed; it must be {allowed}")


@dataclasses.dataclass
class Simulation:
    """A simulated spectrum image: counts (ny, nx, n_channels) and its truth."""

    counts: np.ndarray
    truth: DecompositionResult
    settings: SimulationSettings
    elements: list


def _edx_model(settings: SimulationSettings, elements):
    """The model the counts are drawn from: the workflow's one acquisition -> model."""
    from ..analysis import build_model
    from ..io.acquisition import AcquisitionParameters
    from ..physics import EnergyAxis

    acquisition = AcquisitionParameters(
        elements=tuple(elements),
        beam_energy_keV=settings.beam_energy_keV,
        elevation_deg=settings.elevation_deg,
        azimuth_deg=settings.azimuth_deg,
        tilt_deg=settings.tilt_deg,
        mnka_fwhm_eV=settings.mnka_fwhm_eV,
        thickness_nm=settings.thickness_nm,
        density_g_cm3=settings.density_g_cm3,
        microscope="TEM",
    )
    axis = EnergyAxis(settings.energy_offset_keV, settings.energy_scale_keV, settings.n_channels)
    return build_model(axis, acquisition, elements=list(elements), source="the simulation")


def phase_weights(model, phases, continuum_fraction: float) -> np.ndarray:
    """W (m, k) whose element rows are the atomic fractions, each column's GW summing to 1."""
    labels = model.labels
    W = np.zeros((len(labels), len(phases)))
    for column, phase in enumerate(phases):
        for symbol, percent in phase.composition.items():
            W[labels.index(symbol), column] = percent / 100.0
        line_counts = float((model.G @ W[:, column]).sum())
        kramers = labels.index("continuum_kramers")
        W[kramers, column] = continuum_fraction / (1 - continuum_fraction) * line_counts
        W[:, column] /= float((model.G @ W[:, column]).sum())
    return W


def simulate(settings: SimulationSettings = SimulationSettings()) -> Simulation:
    """Draw a spectrum image: Poisson counts of ``dose * G W H``.

    Parameters
    ----------
    settings : SimulationSettings

    Returns
    -------
    Simulation
        ``counts`` as the narrowest unsigned integer type that holds them; ``truth``
        in the result-file layout (W scaled so that X ~ G W H).
    """
    settings.check()
    rng = np.random.default_rng(settings.seed)
    phases = tuple(settings.phases)
    elements = elements_of(phases)
    model = _edx_model(settings, elements)
    W = phase_weights(model, phases, settings.continuum_fraction) * settings.dose
    maps = abundance_maps(tuple(settings.size), len(phases), settings.shapes, rng=rng)
    ny, nx = settings.size
    H = maps.reshape(len(phases), ny * nx)
    expected = (model.G @ W) @ H  # (channels, pixels)
    counts = rng.poisson(expected.T).reshape(ny, nx, settings.n_channels)
    counts = counts.astype(np.min_scalar_type(int(counts.max())))

    composition = model.composition(W)
    truth = DecompositionResult(
        energy=model.energy_axis.energies,
        G=model.G,
        G_labels=list(model.labels),
        W=W,
        maps=maps,
        spectra=(model.G @ W).T * H.mean(axis=1)[:, None],
        mean_spectrum=counts.reshape(-1, settings.n_channels).mean(axis=0),
        composition=composition.atomic_percent,
        elements=list(composition.elements),
        loss_history=np.zeros((0, len(LOSS_NAMES))),
        loss_names=list(LOSS_NAMES),
        n_iter=0,
        converged=True,
        fit_seconds=0.0,
        config={"simulation": _settings_dict(settings)},
        acquisition={"elements": elements, "beam_energy_keV": settings.beam_energy_keV},
        pixel_size=settings.pixel_size_nm,
        pixel_unit="nm",
        lines=[
            {"element": l.element, "line": l.name, "energy_keV": l.energy_keV, "weight": l.weight}
            for l in model.lines
        ],
        phase_names=[phase.name for phase in phases],
        phase_kinds=["phase"] * len(phases),
        phase_counts=(model.G @ W).sum(axis=0) * H.sum(axis=1),
    )
    return Simulation(counts=counts, truth=truth, settings=settings, elements=elements)


def _settings_dict(settings: SimulationSettings) -> dict:
    out = dataclasses.asdict(settings)
    out["phases"] = [{"name": p.name, "composition": dict(p.composition)} for p in settings.phases]
    out["size"] = list(settings.size)
    out["shapes"] = list(settings.shapes)
    return out


def truth_path(path: str | Path) -> Path:
    """Where the truth of a simulated file lies: ``<stem>_truth.h5`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}_truth.h5")


def write_simulation(
    simulation: Simulation, path: str | Path, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write the counts as an EDS_TEM .hspy file and the truth beside it, atomically.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The spectrum image and the truth file.
    """
    path = Path(path)
    if path.suffix not in (".hspy", ".zspy"):
        raise ValueError(f"output {path.name} is not allowed; the file name must end in .hspy or .zspy")
    truth_file = truth_path(path)
    for target in (path, truth_file):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite to replace it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hyperspy's own deprecation warnings
        signal = _eds_signal(simulation)
    # hyperspy writes to a name it chooses from the suffix: a temporary folder beside it
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                signal.save(staging / path.name, overwrite=True)
            except ImportError as error:  # .zspy without zarr
                raise ValueError(
                    f"cannot write {path.name}: {error} (install zarr, or write .hspy)"
                ) from None
        write_result(simulation.truth, truth_file)
        if path.is_dir():  # a .zspy folder being overwritten: move it aside, then drop it
            os.replace(path, staging / "previous")
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path, truth_file


def _eds_signal(simulation: Simulation):
    """The counts as an EDS_TEM signal with the metadata a microscope file would carry."""
    import hyperspy.api as hs

    settings = simulation.settings
    signal = hs.signals.Signal1D(simulation.counts)
    signal.set_signal_type("EDS_TEM")
    signal.metadata.General.title = "espm simulate"
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.units = "Energy", "keV"
    energy.offset, energy.scale = settings.energy_offset_keV, settings.energy_scale_keV
    for axis, name in zip(signal.axes_manager.navigation_axes, ("x", "y")):
        axis.name, axis.units, axis.scale = name, "nm", settings.pixel_size_nm
    signal.set_microscope_parameters(
        beam_energy=settings.beam_energy_keV,
        live_time=1.0,
        tilt_stage=settings.tilt_deg,
        azimuth_angle=settings.azimuth_deg,
        elevation_angle=settings.elevation_deg,
        energy_resolution_MnKa=settings.mnka_fwhm_eV,
        display=False,
    )
    signal.add_elements(simulation.elements)
    if settings.thickness_nm is not None:
        signal.metadata.set_item("Sample.thickness", settings.thickness_nm)
    if settings.density_g_cm3 is not None:
        signal.metadata.set_item("Sample.density", settings.density_g_cm3)

    return signal
