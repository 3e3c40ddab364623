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


@click.command(short_help="Show what a spectrum image holds.")
@click.argument("file", type=SpectrumImagePath())
@verbosity_options
def info(file):
    """Shape, energy axis, counts, sparsity and the metadata decompose uses (found and missing)."""
    from ..io import REQUIRED_PARAMETERS, load_spectrum_image
    from ..analysis.input_checks import describe_grid

    with refused_inputs():
        image = load_spectrum_image(file)
    ny, nx = image.shape_2d
    energy = image.energy
    per_pixel = image.counts_per_pixel()
    acquisition = image.acquisition
    lines = [
        f"file            {image.path}",
        f"signal type     {image.signal_type or 'unknown'} ({acquisition.microscope or '?'})",
        f"pixels          {describe_grid(ny, nx)}" + (f", pixel size {image.pixel_size:.4g} {image.pixel_unit}"
                                           if image.pixel_size else ", pixel size unknown"),
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
            need = "required: give " + option if name in REQUIRED_PARAMETERS else (
                f"optional ({option})" if option else "not used")
            lines.append(f"  {label:24} {need}")
    if acquisition.mnka_fwhm_eV == 130.0 and image.path.suffix.lower() == ".bcf":
        lines.append("note: .bcf files store no resolution; 130 eV is hyperspy's default (--mnka-fwhm)")
    click.echo("\n".join(lines))
