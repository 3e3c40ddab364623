"""``espm batch STUDY.yaml``: many decompositions from one YAML file."""

from __future__ import annotations

from pathlib import Path

import click

from .options import RefusedInput, normalise_config, read_yaml, refused_inputs, verbosity, verbosity_options


def _check_study(data, study_path: Path) -> dict:
    """Key-check a study mapping against the decompose options (exit 2 on error)."""
    from .decompose import decompose

    name = study_path.name
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"{name} must be a mapping with keys {', '.join(_study_keys())}", param_hint="STUDY"
        )
    unknown = [key for key in data if key not in _study_keys()]
    if unknown:
        raise click.BadParameter(
            f"unknown key {unknown[0]!r} in {name}; valid keys: {', '.join(_study_keys())}",
            param_hint="STUDY",
        )
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise click.BadParameter(f"{name} needs a 'runs:' list, each with a 'file:'", param_hint="STUDY")
    if data.get("output_dir") is not None and not (
        isinstance(data["output_dir"], str) and data["output_dir"].strip()
    ):
        raise click.BadParameter(
            f"output_dir in {name} must be a folder path, got {data['output_dir']!r}", param_hint="STUDY"
        )
    from ..analysis.select_k import study_fold_settings

    try:
        study_fold_settings(data.get("select_k", False))
    except ValueError as error:
        raise click.BadParameter(f"{error} (in {name})", param_hint="STUDY") from None
    checked = {"output_dir": data.get("output_dir"), "select_k": data.get("select_k", False)}
    checked["defaults"] = normalise_config(
        data.get("defaults"), decompose, f"{name} defaults", param_hint="STUDY"
    )
    _check_values(checked["defaults"], f"{name} defaults")
    checked["runs"] = []
    for index, run in enumerate(runs):
        run = normalise_config(
            run, decompose, f"{name} runs[{index}]", extra_keys=("file", "name"), param_hint="STUDY"
        )
        if "file" not in run:
            raise click.BadParameter(f"{name} runs[{index}] has no 'file:'", param_hint="STUDY")
        if not isinstance(run["file"], str) or not run["file"].strip() or "\0" in run["file"]:
            raise click.BadParameter(
                f"{name} runs[{index}]: file must be a path, got {run['file']!r}", param_hint="STUDY"
            )
        if "name" in run:
            run["name"] = _check_name(run["name"], f"{name} runs[{index}]")
        _check_values(run, f"{name} runs[{index}]")
        checked["runs"].append(run)
    sweep = normalise_config(data.get("sweep"), decompose, f"{name} sweep", param_hint="STUDY")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise click.BadParameter(f"sweep {key!r} in {name} must be a non-empty list", param_hint="STUDY")
        for value in values:
            _check_values({key: value}, f"{name} sweep")
    checked["sweep"] = sweep
    return checked


def _check_values(values: dict, source: str) -> None:
    """The option table's checks on a study's values (paths: after they are resolved)."""
    from .options import PATH_KEYS, check_config_values

    check_config_values({k: v for k, v in values.items() if k not in PATH_KEYS + ("name",)}, source)


def _study_keys():
    from .study import STUDY_KEYS

    return STUDY_KEYS


#: Runs a study may expand to without --yes.
MAX_RUNS_WITHOUT_YES = 1000


def _check_name(name, where: str) -> str:
    """A run name is a plain folder name, never a path."""
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise click.BadParameter(f"{where}: name must be a plain name, got {name!r}", param_hint="STUDY")
    name = str(name)
    if (
        not name.strip()
        or name != name.strip()
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or len(name) > 200
    ):
        raise click.BadParameter(
            f"{where}: name {name!r} must be a plain name (letters, digits, "
            "'-', '_', '.'; not starting with '.'), not a path",
            param_hint="STUDY",
        )
    return name


def _count_runs(data) -> int:
    count = len(data["runs"])
    for values in data["sweep"].values():
        count *= len(values)
    return count


def _validated_config(run) -> dict:
    """Run the option table's checks over a planned run's values (exit 2 on a bad one)."""
    from ..analysis.run_config import ConfigError, as_dict, make_config

    file = run.config.get("file")
    if not Path(str(file)).is_file():
        raise click.BadParameter(f"run {run.name}: file {file!r} does not exist", param_hint="STUDY")
    try:
        return as_dict(make_config(run.config))
    except ConfigError as error:
        raise click.BadParameter(f"run {run.name}: {error}", param_hint="STUDY") from None


@click.command(short_help="Run many decompositions from a YAML study file.")
@click.argument("study", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1, max=256),
    default=1,
    show_default=True,
    help="Runs at the same time (separate processes).",
)
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Rerun runs whose result is already there with the same configuration.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Root folder of the runs [default: the study's output_dir, or <study>_results/].",
)
@click.option(
    "--yes", is_flag=True, default=False, help=f"Run a study of more than {MAX_RUNS_WITHOUT_YES} runs."
)
@verbosity_options
@click.pass_context
def batch(ctx, study, jobs, force, output_dir, yes):
    """Run the decompositions of STUDY (YAML: defaults, runs, sweep).

    Every run's values are checked before the first starts. Each run is written into
    a staging folder and moved into place whole; a run whose result exists, complete,
    with the same configuration and input is up to date (an interrupted study resumes),
    unless --force. A failing run is reported and the others go on. Ctrl-C stops the
    current runs after their iteration (written as interrupted) and starts no more.
    At the end, a summary table on stdout and summary.csv with each run's status; exit
    code 1 if any run failed, 130 after Ctrl-C. One batch at a time per output folder.
    With ``select_k: true`` each run also fits its held-out folds (``espm select-k``)
    and the summary adds the held-out deviance and, for runs differing only in
    n_components, the suggested k.
    """
    from ..io import write_text_atomic
    from ..io.folder_lock import folder_lock
    from .study import (
        expand_study,
        remove_leftovers,
        run_study,
        suggest_per_sweep,
        summary_csv,
        summary_table,
    )

    study_path = Path(study)
    data = _check_study(read_yaml(study_path, param_hint="STUDY"), study_path)
    if output_dir:
        data["output_dir"] = str(Path(output_dir).resolve())
    count = _count_runs(data)
    if count > MAX_RUNS_WITHOUT_YES and not yes:
        raise click.UsageError(
            f"{study_path.name} expands to {count} runs, more than "
            f"{MAX_RUNS_WITHOUT_YES}; pass --yes to run them all"
        )
    default_output = study_path.with_name(f"{study_path.stem}_results")
    planned = expand_study(data, study_path, default_output)
    for run in planned:
        run.config = _validated_config(run)
    root = Path(data.get("output_dir") or default_output)
    root = root if root.is_absolute() else study_path.resolve().parent / root
    with refused_inputs(), folder_lock(root):
        for run in planned:
            remove_leftovers(Path(run.config["output_dir"]))
        if verbosity() >= 0:
            click.echo(f"{len(planned)} runs from {study_path.name}, {jobs} at a time", err=True)

        def report(row):
            if verbosity() >= 0:
                click.echo(
                    f"  {row['name']}: {row['status']}" + (f" ({row['error']})" if row.get("error") else ""),
                    err=True,
                )

        rows, interrupted = run_study(planned, jobs=jobs, force=force, on_done=report)
        suggest_per_sweep(planned, rows)
        for run in planned:  # a run stopped at once leaves its staging folder
            remove_leftovers(Path(run.config["output_dir"]))
        summary_file = write_text_atomic(root / "summary.csv", summary_csv(rows))
    click.echo(summary_table(rows))
    click.echo(f"summary: {summary_file}")
    if interrupted:
        counts = {
            status: sum(row["status"] == status for row in rows)
            for status in ("done", "up to date", "interrupted", "failed", "not started")
        }
        click.echo(
            "espm: interrupted: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n), err=True
        )
        ctx.exit(130)
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        raise RefusedInput(f"{len(failed)} of {len(rows)} runs failed")
