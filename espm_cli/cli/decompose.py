"""``espm decompose FILE``: one spectrum image into phases."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import (
    config_option,
    refused_inputs,
    show_logs_above,
    table_options,
    verbosity,
    verbosity_options,
)
from .paths import SpectrumImagePath, is_spectrum_image_path


@click.command(short_help="Decompose a spectrum image into phases.")
@click.argument("file", required=False, type=SpectrumImagePath())
@table_options
@config_option
@verbosity_options
@click.pass_context
def decompose(ctx, file, **options):
    """Decompose FILE (any spectrum image hyperspy reads) into phases.

    The acquisition parameters come from the file's metadata; every one can be
    given as an option. Writes <stem>.h5, maps.png, spectra.png, composition.png,
    convergence.png, composition.csv and run.yaml in the output folder, and prints
    a summary. Ctrl-C stops the fit and still writes the current result (marked not
    converged; exit code 130). One run at a time writes into an output folder.
    """
    file = file or ctx.meta.get("espm.config_file_input")
    if file is None:
        raise click.UsageError("Missing argument 'FILE' (or a 'file:' key in --config).")
    if not is_spectrum_image_path(file):
        raise click.BadParameter(f"file {file!r} does not exist.", param_hint="'FILE'")
    from ..io.folder_lock import folder_lock
    from . import pipeline

    config = options_to_config(file, options)
    bar = _progress_bar(config["max_iter"])
    try:
        with refused_inputs():
            with folder_lock(pipeline.result_path(config).parent):
                outcome = pipeline.run_decomposition(config, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    click.echo(format_summary(outcome))
    if config["truth"]:
        with refused_inputs():
            click.echo(format_truth_comparison(outcome.result, config["truth"]))
    if outcome.interrupted:
        ctx.exit(130)


def options_to_config(file, options: dict):
    """Parsed decompose options -> the checked, frozen run configuration.

    Only the options given (on the command line or in ``--config``) are passed on: the
    others take the defaults of the run's method (``make_config``), and a method can
    refuse a setting it cannot honour only where the user gave it.
    """
    from ..analysis.run_config import ConfigError, make_config

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        options = {
            name: value
            for name, value in options.items()
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        }
    try:
        return make_config(options, file=str(file))
    except ConfigError as error:  # the click types checked every value already
        raise click.BadParameter(error.reason, param_hint=f"'{error.option}'") from None


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
    from ..analysis.input_checks import describe_grid
    from ..report import phase_names

    result, image = outcome.result, outcome.image_summary
    ny, nx = image["shape_2d"]
    status = "converged" if result.converged else ("interrupted" if outcome.interrupted else "not converged")
    lines = [
        f"{image['name']}: {describe_grid(ny, nx)}, {image['n_channels']} channels, "
        f"{image['counts_per_pixel']:.4g} counts/pixel, {100 * image['nonzero_fraction']:.2g}% nonzero",
        f"{result.n_components} phases, {result.n_iter} iterations ({status}) in "
        f"{result.fit_seconds:.2f} s, final objective {result.final_objective:.6g}",
    ]
    names = phase_names(result)
    width = max(len(n) for n in names)
    if result.elements:
        from ..analysis.uncertainty import format_value

        sd = result.composition_sd
        cell = 6 if sd is None else 12
        header = f"{'':{width}}  {'abund.':>6}  {'counts':>8}  {'lines':>5}  " + "  ".join(
            f"{e:>{cell}}" for e in result.elements
        )
        title = (
            "composition (at.%; '-': not detected):"
            if sd is None
            else ("composition (at.% ± 1σ, parametric bootstrap; '-': not detected):")
        )
        lines += ["", title, header]
        counts = result.phase_counts if result.phase_counts is not None else [float("nan")] * len(names)
        shares = result.line_fraction if result.line_fraction is not None else [float("nan")] * len(names)
        for index, name in enumerate(names):
            row = "  ".join(
                f"{format_value(v, None if sd is None else sd[index][j]):>{cell}}"
                for j, v in enumerate(result.composition[index])
            )
            share = f"{100 * shares[index]:4.0f}%" if shares[index] == shares[index] else f"{'-':>5}"
            lines.append(
                f"{name:{width}}  {result.maps[index].mean():6.3f}  {counts[index]:8.3g}  {share}  {row}"
            )
    else:
        lines += ["", "no physics model: phases without compositions"]
    if result.residual_peaks:
        lines += ["", "not explained by the model:"]
        lines += [f"  {peak['message']}" for peak in result.residual_peaks]
    lines += ["", f"results in {outcome.output_dir}/:", "  " + ", ".join(p.name for p in outcome.files)]
    return "\n".join(lines)


def format_truth_comparison(result, truth_file) -> str:
    """Lines telling how close the fitted phases came to the truth."""
    from ..io import read_result
    from ..report import compare_to_truth

    truth = read_result(truth_file)
    matches = compare_to_truth(result, truth)
    lines = [
        "",
        f"compared with the truth ({Path(truth_file).name}):",
        "true phase  fitted  spectral angle  map correlation  at.% error (mean abs.)",
    ]
    for m in matches:
        lines.append(
            f"{m.true + 1:>10}  {m.fitted + 1:>6}  {m.spectral_angle_deg:12.2f}°  "
            f"{m.map_correlation:15.3f}  {m.atomic_percent_error:10.2f}"
        )
    return "\n".join(lines)
