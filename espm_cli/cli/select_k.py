"""``espm select-k FILE --k 2..8``: how many phases, by the deviance of held-out entries."""

from __future__ import annotations

from pathlib import Path

import click

from .options import (
    RefusedInput,
    config_option,
    logger,
    refused_inputs,
    table_options,
    verbosity,
    verbosity_options,
)
from .paths import SpectrumImagePath, is_spectrum_image_path


def _k_range(ctx, param, value):
    from ..analysis.select_k import parse_k_range

    if value is None:
        return None
    try:
        return parse_k_range(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _select_k_options(function):
    return table_options(function, exclude=("n_components",))


@click.command("select-k", short_help="Choose the number of phases by held-out deviance.")
@click.argument("file", required=False, type=SpectrumImagePath())
@click.option(
    "--k",
    "k_range",
    required=True,
    callback=_k_range,
    metavar="LOW..HIGH",
    help="Numbers of phases to try: 2..8, or a list such as 2,3,5.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2, max=100),
    default=3,
    show_default=True,
    help="Folds of held-out entries (each fit leaves 1/N of the entries out).",
)
@click.option(
    "--fold-kind",
    type=click.Choice(["speckle", "blocks"]),
    default="speckle",
    show_default=True,
    help="Held-out single entries, or tiles of pixels x bands of channels.",
)
@click.option(
    "--fold-seed",
    type=click.IntRange(min=0, max=2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the folds.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1, max=256),
    default=1,
    show_default=True,
    help="Values of k fitted at the same time (separate processes).",
)
@click.option(
    "--force", is_flag=True, default=False, help="Refit every k, even those already in the output folder."
)
@_select_k_options
@config_option
@verbosity_options
@click.pass_context
def select_k(ctx, file, k_range, folds, fold_kind, fold_seed, jobs, force, **options):
    """Fit FILE with each k of --k and suggest the number of phases.

    Each k is fitted on the whole image (a normal result folder OUT/k<k>/, as written by
    espm decompose) and once per fold with that fold's entries left out; the Poisson
    deviance of the model on the left-out entries says how well k phases predict data
    they did not see. The suggestion is the smallest k within one standard error of the
    lowest held-out deviance. Writes select_k.png, select_k.csv and the folders k<k>/
    into the output folder [default: <stem>_select_k/ beside FILE]; takes every option
    of espm decompose but -k. A rerun keeps the k already done with the same options
    and folds (an interrupted sweep resumes), unless --force.
    """
    file = file or ctx.meta.get("espm.config_file_input")
    if file is None:
        raise click.UsageError("Missing argument 'FILE' (or a 'file:' key in --config).")
    if not is_spectrum_image_path(file):
        raise click.BadParameter(f"file {file!r} does not exist.", param_hint="'FILE'")
    from ..analysis.run_config import as_dict
    from ..analysis.select_k import fold_settings
    from ..io.folder_lock import folder_lock
    from .decompose import options_to_config
    from .study import PlannedRun, remove_leftovers, run_study

    config = options_to_config(file, options)
    root = (
        Path(config["output_dir"])
        if config["output_dir"]
        else Path(file).with_name(f"{Path(file).stem}_select_k")
    )
    with refused_inputs():
        _check_k_fits(config, k_range, folds)
    settings = fold_settings(folds, fold_kind, fold_seed)
    base = {key: value for key, value in as_dict(config).items()}
    planned = [
        PlannedRun(
            f"k{k}",
            {**base, "n_components": k, "output_dir": str((root / f"k{k}").resolve())},
            heldout=settings,
        )
        for k in k_range
    ]
    with refused_inputs(), folder_lock(root):
        for run in planned:
            remove_leftovers(Path(run.config["output_dir"]))
        if verbosity() >= 0:
            click.echo(
                f"{Path(file).name}: k = {', '.join(map(str, k_range))}, {folds} "
                f"{fold_kind} folds, {jobs} at a time",
                err=True,
            )

        def report(row):
            if verbosity() >= 0:
                text = row["status"] + (f" ({row['error']})" if row.get("error") else "")
                if row.get("heldout_deviance"):
                    text += f", held-out deviance {float(row['heldout_deviance']):.6g} per entry"
                click.echo(f"  {row['name']}: {text}", err=True)

        rows, interrupted = run_study(planned, jobs=jobs, force=force or config["overwrite"], on_done=report)
        for run in planned:
            remove_leftovers(Path(run.config["output_dir"]))
        if interrupted:
            click.echo("espm: interrupted: the k done so far are kept; rerun to resume", err=True)
            ctx.exit(130)
        failed = [(run, row) for run, row in zip(planned, rows) if not row.get("heldout_record")]
        if failed:
            run, row = failed[0]
            raise RefusedInput(
                f"{len(failed)} of {len(rows)} fits failed; {run.name}: {row.get('error') or row['status']}"
            )
        files = _write_outputs(root, planned, rows)
    selection = files.pop("selection")
    click.echo(files.pop("table"))
    click.echo(f"suggested k: {selection.suggested_k} (lowest held-out deviance at k = {selection.best_k})")
    click.echo(
        f"results in {root}/: "
        + ", ".join(path.name for path in files.values())
        + ", "
        + ", ".join(run.name for run in planned)
    )


def _check_k_fits(config, k_range, n_folds) -> None:
    """Refuse a k range the image cannot hold (before any fit)."""
    from ..io import load_spectrum_image

    image = load_spectrum_image(
        config["file"],
        crop=config["crop"],
        bin_factor=int(config["bin"]),
        energy_range=config["energy_range"],
        lazy=True,  # the shape only: no counts read
    )
    largest = min(image.n_pixels, image.n_channels)
    if k_range[-1] > largest:
        raise click.BadParameter(
            f"k = {k_range[-1]} is larger than the image allows "
            f"({image.n_pixels} pixels, {image.n_channels} channels); "
            f"use k up to {largest}",
            param_hint="'--k'",
        )


def _write_outputs(root: Path, planned, rows) -> dict:
    import warnings

    from ..analysis.notices import EspmWarning
    from ..analysis.select_k import selection_from_records, warn_at_edge
    from ..report.select_k import plot_select_k, select_k_csv, select_k_table

    selection = selection_from_records([row["heldout_record"] for row in rows])
    extra = {
        int(run.config["n_components"]): {
            "final_objective": row.get("final_objective", ""),
            "result": row.get("output", ""),
        }
        for run, row in zip(planned, rows)
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EspmWarning)
        warn_at_edge(selection)
    for warning in caught:
        logger.warning("%s", warning.message)
    return {
        "selection": selection,
        "table": select_k_table(selection, extra),
        "csv": select_k_csv(selection, root / "select_k.csv", extra),
        "png": plot_select_k(selection, root / "select_k.png"),
    }
