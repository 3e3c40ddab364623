"""``espm info FILE``: what a spectrum image holds and what decompose would need."""

from __future__ import annotations

import click

from .options import refused_inputs, verbosity_options
from .paths import SpectrumImagePath

_LABELS = {
    "elements": ("elements", "--elements"),
    "beam_energy_keV": ("beam energy (keV)", "--beam-energy"),
    "elevation_deg": ("detector elevation (°)", "--elevation"),
    "azimuth_deg": ("detector azimuth (°)", "--azimuth"),
    "tilt_deg": ("stage tilt (°)", "--tilt"),
    "mnka_fwhm_eV": ("Mn Kα resolution (eV)", "--mnka-fwhm"),
    "thickness_nm": ("thickness (nm)", "--thickness"),
    "density_g_cm3": ("density (g/cm³)", "--density"),
    "live_time_s": ("live time (s)", None),
}


def backend_lines():
    """One line per solver backend: available here (what it runs on) or not (why not)."""
    import importlib

    from ..solver.backends import AUTO_PREFERENCE, get_backend

    rows = [("reference", True, "numpy/scipy: every loss, mask and constraint")]
    try:
        get_backend("numba")
        numba = importlib.import_module("numba")
        rows.insert(0, ("numba", True, f"fused KL kernels, numba {numba.__version__}"))
    except ImportError as error:
        rows.insert(0, ("numba", False, f"numba does not import ({error})"))
    from ..solver._array_api_backend import availability

    rows += availability()
    auto = next(name for name in AUTO_PREFERENCE if any(row[0] == name and row[1] for row in rows))
    lines = [f"solver backends (--backend; auto picks {auto}):"]
    for name, ok, detail in rows:
        lines.append(f"  {name + ':':11} {'available' if ok else 'not available'} ({detail})")
    return lines


@click.command(short_help="Show what a spectrum image holds, or where a fit can run.")
@click.argument("file", type=SpectrumImagePath(), required=False)
@click.option(
    "--backends",
    "show_backends",
    is_flag=True,
    help="List the solver backends (--backend of decompose) and whether each runs here, or why not.",
)
@verbosity_options
def info(file, show_backends):
    """Shape, energy axis, counts, sparsity and the metadata decompose uses (found and missing).

    With --backends: which solver backends run on this machine (and why the others do not).
    """
    if show_backends:
        click.echo("\n".join(backend_lines()))
        if file is None:
            return
        click.echo("")
    elif file is None:
        raise click.UsageError("give a FILE to describe, or --backends to list the solver backends.")
    from ..analysis.input_checks import describe_grid
    from ..io import REQUIRED_PARAMETERS, load_spectrum_image

    with refused_inputs():
        image = load_spectrum_image(file)
    ny, nx = image.shape_2d
    energy = image.energy
    per_pixel = image.counts_per_pixel()
    acquisition = image.acquisition
    lines = [
        f"file            {image.path}",
        f"signal type     {image.signal_type or 'unknown'} ({acquisition.microscope or '?'})",
        f"pixels          {describe_grid(ny, nx)}"
        + (
            f", pixel size {image.pixel_size:.4g} {image.pixel_unit}"
            if image.pixel_size
            else ", pixel size unknown"
        ),
        f"energy axis     {image.n_channels} channels, {energy[0]:.3f} to {energy[-1]:.3f} keV, "
        f"{1000 * image.energy_scale_keV:.2f} eV/channel",
        f"counts          {image.total_counts:.6g} total, {per_pixel.mean():.4g} per pixel "
        f"(min {per_pixel.min():.4g}, max {per_pixel.max():.4g}), dtype {image.counts.dtype}",
        f"nonzero         {100 * image.nonzero_fraction:.3g}% of the values "
        f"({'sparse' if image.is_sparse else 'dense'} in memory)",
        "",
        "metadata found:",
    ]
    missing = acquisition.missing()
    for name, (label, _) in _LABELS.items():
        if name not in missing:
            value = getattr(acquisition, name)
            shown = ", ".join(value) if name == "elements" else f"{value:g}"
            lines.append(f"  {label:24} {shown}")
    if missing:
        lines.append("metadata missing:")
        for name in missing:
            label, option = _LABELS[name]
            need = (
                "required: give " + option
                if name in REQUIRED_PARAMETERS
                else (f"optional ({option})" if option else "not used")
            )
            lines.append(f"  {label:24} {need}")
    if acquisition.mnka_fwhm_eV == 130.0 and image.path.suffix.lower() == ".bcf":
        lines.append("note: .bcf files store no resolution; 130 eV is hyperspy's default (--mnka-fwhm)")
    click.echo("\n".join(lines))
