"""``espm batch STUDY.yaml``: many decompositions from one YAML file."""

from __future__ import annotations

from pathlib import Path

import click

from .options import RefusedInput, normalise_config, read_yaml, verbosity, verbosity_options


def _check_study(data, study_path: Path) -> dict:
    """Key-check a study mapping against the decompose options (exit 2 on error)."""
    from .decompose import decompose

    name = study_path.name
    if not isinstance(data, dict):
        raise click.BadParameter(f"{name} must be a mapping with keys {', '.join(_study_keys())}",
                                 param_hint="STUDY")
    unknown = [key for key in data if key not in _study_keys()]
    if unknown:
        raise click.BadParameter(f"unknown key {unknown[0]!r} in {name}; valid keys: "
                                 f"{', '.join(_study_keys())}", param_hint="STUDY")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise click.BadParameter(f"{name} needs a 'runs:' list, each with a 'file:'", param_hint="STUDY")
    checked = {"output_dir": data.get("output_dir")}
    checked["defaults"] = normalise_config(data.get("defaults"), decompose, f"{name} defaults")
    checked["runs"] = []
    for index, run in enumerate(runs):
        run = normalise_config(run, decompose, f"{name} runs[{index}]", extra_keys=("file", "name"))
        if "file" not in run:
            raise click.BadParameter(f"{name} runs[{index}] has no 'file:'", param_hint="STUDY")
        checked["runs"].append(run)
    sweep = normalise_config(data.get("sweep"), decompose, f"{name} sweep")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise click.BadParameter(f"sweep {key!r} in {name} must be a non-empty list",
                                     param_hint="STUDY")
    checked["sweep"] = sweep
    return checked


def _study_keys():
    from .study import STUDY_KEYS

    return STUDY_KEYS


def _validated_config(run) -> dict:
    """Run the decompose option types over a planned run's values (exit 2 on a bad one)."""
    from .decompose import decompose, options_to_config

    values = dict(run.config)
    file = values.pop("file")
    try:
        ctx = decompose.make_context("decompose", [str(file)], default_map=values)
    except click.BadParameter as error:
        raise click.BadParameter(f"run {run.name}: {error.format_message()}", param_hint="STUDY") from None
    params = dict(ctx.params)
    return options_to_config(params.pop("file"), params)


@click.command(short_help="Run many decompositions from a YAML study file.")
@click.argument("study", type=click.Path(exists=True, dir_okay=False))
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at the same time (separate processes).")
@click.option("--force", is_flag=True, default=False,
              help="Rerun runs whose result is already there with the same configuration.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default=None,
              help="Root folder of the runs [default: the study's output_dir, or <study>_results/].")
@verbosity_options
def batch(study, jobs, force, output_dir):
    """Run the decompositions of STUDY (YAML: defaults, runs, sweep).

    Each run writes into its own folder; a run whose result exists with the same
    configuration and input is skipped (an interrupted study resumes), unless --force.
    A failing run is reported and the others go on. At the end, a summary table on
    stdout and summary.csv; exit code 1 if any run failed.
    """
    from ..io import write_text_atomic
    from .study import expand_study, run_study, summary_csv, summary_table

    study_path = Path(study)
    data = _check_study(read_yaml(study_path, param_hint="STUDY"), study_path)
    if output_dir:
        data["output_dir"] = str(Path(output_dir).resolve())
    default_output = study_path.with_name(f"{study_path.stem}_results")
    planned = expand_study(data, study_path, default_output)
    for run in planned:
        run.config = _validated_config(run)
    root = Path(data.get("output_dir") or default_output)
    root = root if root.is_absolute() else study_path.resolve().parent / root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RefusedInput(f"output directory {root} is not writable ({error.strerror})") from None
    if verbosity() >= 0:
        click.echo(f"{len(planned)} runs from {study_path.name}, {jobs} at a time", err=True)

    def report(row):
        if verbosity() >= 0:
            click.echo(f"  {row['name']}: {row['status']}" + (f" ({row['error']})" if row.get("error") else ""),
                   err=True)

    rows = run_study(planned, jobs=jobs, force=force, on_done=report)
    summary_file = write_text_atomic(root / "summary.csv", summary_csv(rows))
    click.echo(summary_table(rows))
    click.echo(f"summary: {summary_file}")
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        raise RefusedInput(f"{len(failed)} of {len(rows)} runs failed")
