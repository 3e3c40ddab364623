"""``espm simulate OUT.hspy``: a synthetic spectrum image with known truth."""

from __future__ import annotations

import click

from .options import positive_float, refused_inputs, verbosity_options


@click.command(short_help="Write a synthetic spectrum image and its truth.")
@click.argument("output", type=click.Path())  # .zspy is a folder
@click.option(
    "--phase",
    "phases",
    multiple=True,
    metavar="Symbol=at%,...",
    help="A phase composition, e.g. Fe=50,Pt=50 (repeat per phase; the first fills "
    "the background). Default: silicate matrix, FePt particles, TiO2 layer.",
)
@click.option(
    "--shapes",
    default=None,
    metavar="SHAPE,...",
    help="Map shape of phases 2, 3, ...: particles, layer, gradient.",
)
@click.option(
    "--size",
    type=click.IntRange(min=2),
    nargs=2,
    default=(64, 64),
    show_default=True,
    metavar="NY NX",
    help="Pixels.",
)
@click.option(
    "--dose", type=positive_float(True), default=200.0, show_default=True, help="Mean counts per pixel."
)
@click.option("--beam-energy", type=positive_float(True), default=200.0, show_default=True, help="keV.")
@click.option("--mnka-fwhm", type=positive_float(True), default=130.0, show_default=True, help="eV.")
@click.option("--elevation", type=float, default=22.0, show_default=True, help="Degrees.")
@click.option("--azimuth", type=float, default=45.0, show_default=True, help="Degrees.")
@click.option("--tilt", type=float, default=0.0, show_default=True, help="Degrees.")
@click.option("--thickness", type=positive_float(True), default=None, help="nm (needs --density).")
@click.option("--density", type=positive_float(True), default=None, help="g/cm³.")
@click.option("--channels", type=click.IntRange(min=16), default=2048, show_default=True)
@click.option("--channel-width", type=positive_float(True), default=0.01, show_default=True, help="keV.")
@click.option("--energy-offset", type=float, default=0.0, show_default=True, help="keV.")
@click.option(
    "--continuum-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of the counts in the bremsstrahlung.",
)
@click.option("--pixel-size", type=positive_float(True), default=2.0, show_default=True, help="nm.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--overwrite", is_flag=True, default=False, help="Replace existing files.")
@verbosity_options
def simulate(
    output,
    phases,
    shapes,
    size,
    dose,
    beam_energy,
    mnka_fwhm,
    elevation,
    azimuth,
    tilt,
    thickness,
    density,
    channels,
    channel_width,
    energy_offset,
    continuum_fraction,
    pixel_size,
    seed,
    overwrite,
):
    """Write OUTPUT (.hspy) with Poisson counts of known phases, and <stem>_truth.h5 beside it."""
    from pathlib import Path

    from .. import simulate as simulation

    with refused_inputs():
        chosen = tuple(simulation.parse_phase(text, f"phase {i + 1}") for i, text in enumerate(phases))
        settings = simulation.SimulationSettings(
            phases=chosen or simulation.DEFAULT_PHASES,
            shapes=tuple(s.strip() for s in shapes.split(",")) if shapes else (),
            size=tuple(size),
            dose=dose,
            beam_energy_keV=beam_energy,
            mnka_fwhm_eV=mnka_fwhm,
            elevation_deg=elevation,
            azimuth_deg=azimuth,
            tilt_deg=tilt,
            thickness_nm=thickness,
            density_g_cm3=density,
            energy_offset_keV=energy_offset,
            energy_scale_keV=channel_width,
            n_channels=channels,
            continuum_fraction=continuum_fraction,
            pixel_size_nm=pixel_size,
            seed=seed,
        )
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        result = simulation.simulate(settings)
        image_path, truth_file = simulation.write_simulation(result, output, overwrite=overwrite)
    ny, nx = settings.size
    click.echo(
        f"{image_path}: {ny} x {nx} pixels, {channels} channels, "
        f"{result.counts.sum() / (ny * nx):.4g} counts/pixel, {result.counts.dtype}"
    )
    click.echo(f"truth: {truth_file}")
    for phase, row in zip(settings.phases, result.truth.composition):
        parts = ", ".join(f"{e} {v:.1f}" for e, v in zip(result.truth.elements, row) if v > 0)
        click.echo(f"  {phase.name}: {parts} at.%")
