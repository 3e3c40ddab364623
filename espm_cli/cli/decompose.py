"""``espm decompose FILE``: one spectrum image into phases."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import (SymbolList, config_option, positive_float, refused_inputs, show_logs_above,
                      verbosity, verbosity_options)


@click.command(short_help="Decompose a spectrum image into phases.")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "--n-components", type=click.IntRange(min=1), default=3, show_default=True,
              help="Number of phases.")
@click.option("--elements", type=SymbolList(), default=None,
              help="Elements to model, e.g. Fe,Pt,O (default: from the file's metadata).")
@click.option("--ignore-elements", type=SymbolList(), default=None,
              help="Elements modelled but left out of the compositions, e.g. Cu (grid).")
@click.option("--beam-energy", type=positive_float(True), default=None, help="Beam energy, keV.")
@click.option("--elevation", type=float, default=None, help="Detector elevation, degrees.")
@click.option("--azimuth", type=float, default=None, help="Detector azimuth, degrees.")
@click.option("--tilt", type=float, default=None, help="Stage tilt (alpha), degrees.")
@click.option("--mnka-fwhm", type=positive_float(True), default=None,
              help="Detector resolution at Mn Kα, eV.")
@click.option("--thickness", type=positive_float(True), default=None,
              help="Sample thickness, nm (with --density: self-absorption).")
@click.option("--density", type=positive_float(True), default=None, help="Sample density, g/cm³.")
@click.option("--lambda-L", "lambda_L", type=positive_float(), default=0.0, show_default=True,
              help="Weight of the Laplacian smoothness of the maps.")
@click.option("--mu", type=positive_float(), default=0.0, show_default=True,
              help="Weight of the log sparsity of the maps.")
@click.option("--epsilon-reg", type=positive_float(True), default=1.0, show_default=True,
              help="ε in the sparsity term log(H + ε).")
@click.option("--simplex", type=click.Choice(["H", "W", "none"], case_sensitive=False), default="H",
              show_default=True, help="H: abundances of a pixel sum to 1; W: element weights of "
              "a phase sum to 1; none.")
@click.option("--max-iter", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--tol", type=positive_float(), default=1e-4, show_default=True,
              help="Stop when the objective's relative decrease falls below this.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the initialisation.")
@click.option("--init", type=click.Choice(["auto", "spa", "kmeans", "nndsvda", "random"]),
              default="auto", show_default=True,
              help="Start: spa (extreme points of the pixels' element content, the default "
              "with physics), kmeans (k-means++ of it), nndsvda (SVD of the counts, the "
              "default with --no-physics), random.")
@click.option("--n-init", "n_init", type=click.IntRange(min=1), default=None,
              help="Number of starts; the best after 10 iterations is continued "
              "[default: 1].")
@click.option("--bin", "bin", type=click.IntRange(min=1), default=1, show_default=True,
              help="Sum N x N pixels before fitting.")
@click.option("--crop", type=click.IntRange(min=0), nargs=4, default=None,
              metavar="X Y WIDTH HEIGHT", help="Pixel window to keep.")
@click.option("--energy-range", type=float, nargs=2, default=None, metavar="LOW HIGH",
              help="Energy window to fit, keV.")
@click.option("--no-physics", is_flag=True, default=False,
              help="Plain KL-NMF (G = identity): no elements needed, no compositions.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the results [default: <stem>_espm/ beside FILE].")
@click.option("--overwrite", is_flag=True, default=False, help="Replace an existing result.")
@click.option("--log-spectra", is_flag=True, default=False,
              help="Logarithmic intensity axis in spectra.png.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Truth file of a simulated image (<stem>_truth.h5): print how close the phases came.")
@config_option
@verbosity_options
@click.pass_context
def decompose(ctx, file, **options):
    """Decompose FILE (any spectrum image hyperspy reads) into phases.

    The acquisition parameters come from the file's metadata; every one can be
    given as an option. Writes <stem>.h5, maps.png, spectra.png, composition.png,
    convergence.png, composition.csv and run.yaml in the output folder, and prints
    a summary. Ctrl-C stops the fit and still writes the current result (marked not
    converged).
    """
    file = file or ctx.meta.get("espm.config_file_input")
    if file is None:
        raise click.UsageError("Missing argument 'FILE' (or a 'file:' key in --config).")
    if not Path(file).is_file():
        raise click.BadParameter(f"file {file!r} does not exist.", param_hint="'FILE'")
    from . import pipeline

    config = options_to_config(file, options)
    bar = _progress_bar(config["max_iter"])
    try:
        with refused_inputs():
            outcome = pipeline.run_decomposition(config, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    click.echo(format_summary(outcome))
    if config["truth"]:
        with refused_inputs():
            click.echo(format_truth_comparison(outcome.result, config["truth"]))


def options_to_config(file, options: dict) -> dict:
    """Parsed decompose options -> a run configuration (plain lists, canonical simplex)."""
    config = {"file": str(file), **options}
    if config.get("simplex") is not None:
        config["simplex"] = {"h": "H", "w": "W"}.get(str(config["simplex"]).lower(), "none")
    for key in ("crop", "energy_range", "elements", "ignore_elements"):
        config[key] = list(config[key]) if config.get(key) else None
    return config


class _Progress:
    """tqdm bar on stderr: iterations and objective."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self._bar = tqdm(total=total, file=sys.stderr, unit="it", leave=False, dynamic_ncols=True)
        show_logs_above(self)

    def write(self, message: str):
        self._bar.write(message, file=sys.stderr)

    def update(self, n_iter, losses_row):
        self._bar.update(n_iter - self._bar.n)
        self._bar.set_postfix_str(f"objective {float(losses_row[-1]):.6g}")

    def close(self):
        show_logs_above(None)
        self._bar.close()


def _progress_bar(total: int):
    if verbosity() < 0 or not sys.stderr.isatty():
        return None
    return _Progress(total)


def format_summary(outcome) -> str:
    """The stdout summary: data, phases with at.%, iterations, time, files."""
    from ..report import phase_names

    result, image = outcome.result, outcome.image_summary
    ny, nx = image["shape_2d"]
    status = "converged" if result.converged else ("interrupted" if outcome.interrupted else "not converged")
    lines = [
        f"{image['name']}: {ny} x {nx} pixels, {image['n_channels']} channels, "
        f"{image['counts_per_pixel']:.4g} counts/pixel, {100 * image['nonzero_fraction']:.2g}% nonzero",
        f"{result.n_components} phases, {result.n_iter} iterations ({status}) in "
        f"{result.fit_seconds:.2f} s, final objective {result.final_objective:.6g}",
    ]
    names = phase_names(result)
    width = max(len(n) for n in names)
    if result.elements:
        header = f"{'':{width}}  {'abund.':>6}  " + "  ".join(f"{e:>6}" for e in result.elements)
        lines += ["", "composition (at.%):", header]
        for index, name in enumerate(names):
            row = "  ".join(f"{v:6.1f}" if v == v else f"{'-':>6}" for v in result.composition[index])
            lines.append(f"{name:{width}}  {result.maps[index].mean():6.3f}  {row}")
    else:
        lines += ["", "no physics model: phases without compositions"]
    lines += ["", f"results in {outcome.output_dir}/:", "  " + ", ".join(p.name for p in outcome.files)]
    return "\n".join(lines)


def format_truth_comparison(result, truth_file) -> str:
    """Lines telling how close the fitted phases came to the truth."""
    from ..io import read_result
    from ..report import compare_to_truth

    truth = read_result(truth_file)
    matches = compare_to_truth(result, truth)
    lines = ["", f"compared with the truth ({Path(truth_file).name}):",
             "true phase  fitted  spectral angle  map correlation  at.% error (mean abs.)"]
    for m in matches:
        lines.append(f"{m.true + 1:>10}  {m.fitted + 1:>6}  {m.spectral_angle_deg:12.2f}°  "
                     f"{m.map_correlation:15.3f}  {m.atomic_percent_error:10.2f}")
    return "\n".join(lines)
