"""Batch studies: expand a YAML study into runs, run them (in processes), summarise.

A study file::

    output_dir: results          # optional, relative to the study file
    defaults: {n_components: 3}  # any decompose option
    runs:                        # each a file plus overrides (and an optional name)
      - file: ../sample_data/sample.hspy
    sweep:                       # optional: the product of these lists expands each run
      lambda_L: [0.0, 1.0]

No click here: the command module validates values through the decompose options.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from . import pipeline

logger = logging.getLogger(__name__)

STUDY_KEYS = ("output_dir", "defaults", "runs", "sweep", "select_k")
SUMMARY_FIELDS = ("name", "status", "final_objective", "n_iter", "converged", "seconds", "output", "error")
#: Columns a study with ``select_k: true`` adds (held-out deviance per entry over the folds).
HELDOUT_FIELDS = ("heldout_deviance", "heldout_sd", "suggested_k")


@dataclasses.dataclass
class PlannedRun:
    """One run of a study: its name and full decompose configuration."""

    name: str
    config: dict
    #: Fold settings (``select_k.fold_settings``) when the run also fits its held-out
    #: folds (``select_k: true``, ``espm select-k``); None otherwise.
    heldout: dict | None = None


def _label(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return "".join(c if c.isalnum() or c in ".-," else "-" for c in text)


def expand_study(study: dict, study_path: Path, default_output: Path) -> list[PlannedRun]:
    """The runs of a (key-checked) study: defaults, then run overrides, then sweep values.

    Relative ``file`` and ``output_dir`` paths are relative to the study file.
    """
    base = study_path.resolve().parent  # resolve(): no "configs/../" in the paths shown
    output_root = Path(study.get("output_dir") or default_output)
    output_root = output_root if output_root.is_absolute() else base / output_root
    sweep = study.get("sweep") or {}
    sweep_keys = list(sweep)
    combinations = list(itertools.product(*(sweep[k] for k in sweep_keys))) or [()]
    planned, names = [], set()
    for index, run in enumerate(study.get("runs") or []):
        run = dict(run)
        run_name = str(run.pop("name", "") or Path(str(run.get("file", f"run{index + 1}"))).stem)
        for values in combinations:
            config = {**(study.get("defaults") or {}), **run, **dict(zip(sweep_keys, values))}
            name = run_name + "".join(f"_{k}{_label(v)}" for k, v in zip(sweep_keys, values))
            while name in names:
                name += f"_{index + 1}"
            names.add(name)
            for key in ("file", "truth"):  # relative to the study file
                if isinstance(config.get(key), str):
                    config[key] = str((base / Path(config[key]).expanduser()).resolve())
            # every run gets its own folder <root>/<name>: an output_dir given in the
            # defaults or a run is that run's root, never a folder runs would share
            root = Path(str(config["output_dir"])).expanduser() if config.get("output_dir") else output_root
            config["output_dir"] = str((base / root / name).resolve())
            planned.append(PlannedRun(name, config, heldout=_fold_settings(study)))
    return planned


def _fold_settings(study: dict):
    """Fold settings of a study with ``select_k`` on (None without)."""
    from ..analysis.select_k import study_fold_settings

    return study_fold_settings(study.get("select_k"))


def suggest_per_sweep(planned: list[PlannedRun], rows: list[dict]) -> None:
    """``suggested_k`` in the rows of each group of runs differing only in n_components.

    The one-standard-error rule of :func:`espm_cli.analysis.select_k.suggest_k` over the
    group's held-out records; a group with a run lacking its record gets no suggestion.
    """
    from ..analysis.select_k import selection_from_records

    groups: dict[str, list[int]] = {}
    for index, run in enumerate(planned):
        if run.heldout is None:
            continue
        key = json.dumps(
            {k: v for k, v in run.config.items() if k not in ("n_components", "output_dir")},
            sort_keys=True,
            default=str,
        )
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        records = [rows[i].get("heldout_record") for i in members]
        if len(members) < 2 or not all(records):
            continue
        suggested = selection_from_records(records).suggested_k
        for i in members:
            rows[i]["suggested_k"] = str(suggested)


#: Marker a batch writes last into a run's folder: the run's status and configuration hash.
RUN_MARKER = ".espm-run.json"
#: Statuses of summary.csv.
DONE, UP_TO_DATE, INTERRUPTED, FAILED, NOT_STARTED = (
    "done",
    "up to date",
    "interrupted",
    "failed",
    "not started",
)


def _row(run: PlannedRun, **values) -> dict:
    row = {field: "" for field in SUMMARY_FIELDS}
    row.update(name=run.name, status=NOT_STARTED, **values)
    return row


def _staging_names(final: Path) -> list[Path]:
    """Leftovers of earlier runs of ``final``: staging and replaced folders."""
    return [*final.parent.glob(f".{final.name}.staging-*"), *final.parent.glob(f".{final.name}.old-*")]


def remove_leftovers(final: Path) -> None:
    """Remove what a killed run of ``final`` left (call under the batch's lock)."""
    for path in _staging_names(final):
        shutil.rmtree(path, ignore_errors=True)
    if final.is_dir():
        for partial in final.glob(".*.part*"):
            partial.unlink(missing_ok=True)


def run_status(final: Path, expected_hash: str) -> str | None:
    """The marker's status when it holds ``expected_hash`` and the result file agrees."""
    from ..io import read_config_hash

    try:
        marker = json.loads((final / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("config_hash") != expected_hash:
        return None
    results = [path for path in final.glob("*.h5") if not path.name.startswith(".")]
    try:
        if len(results) != 1 or read_config_hash(results[0]) != expected_hash:
            return None
    except (OSError, ValueError, KeyError):
        return None
    return marker.get("status")


def _move_into_place(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``: the folder is the old one, the new one, or absent."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_one(run: PlannedRun, force: bool = False, should_stop=None) -> dict:
    """Run (or skip) one planned run; never raises: failures are reported in the row.

    The run is written into a staging folder beside its own and moved into place
    whole, with a marker holding its status (done or interrupted) and hash: only a
    done run with the same hash is up to date.
    """
    from ..io import file_sha256, read_result, write_text_atomic

    row = _row(run)
    started = time.perf_counter()
    staging = None
    try:
        config = pipeline.full_config(run.config)
        target = pipeline.result_path(config)
        final = target.parent
        row["output"] = str(target)
        expected_hash = pipeline.config_hash(config, file_sha256(config["file"]))
        record = _read_heldout(final, run)
        if not force and run_status(final, expected_hash) == DONE and record is not False:
            result = read_result(target)
            _add_heldout(row, record)
            row.update(
                status=UP_TO_DATE,
                final_objective=f"{result.final_objective:.6g}",
                n_iter=result.n_iter,
                converged=result.converged,
                seconds=f"{result.fit_seconds:.2f}",
            )
            return row
        if should_stop is not None and should_stop():
            return row  # not started
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{final.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        outcome = pipeline.run_decomposition(
            {**config, "overwrite": True}, should_stop=should_stop, write_to=staging
        )
        result = outcome.result
        status = INTERRUPTED if outcome.interrupted else DONE
        if run.heldout is not None and status == DONE:
            from ..analysis.select_k import write_heldout

            _add_heldout(row, write_heldout(config, staging, run.heldout, loaded=outcome.loaded))
        write_text_atomic(
            staging / RUN_MARKER,
            json.dumps({"status": status, "config_hash": expected_hash, "name": run.name}) + "\n",
        )
        _move_into_place(staging, final)
        staging = None
        row.update(
            status=status,
            final_objective=f"{result.final_objective:.6g}",
            n_iter=result.n_iter,
            converged=result.converged,
            seconds=f"{result.fit_seconds:.2f}",
        )
    except KeyboardInterrupt:  # a second Ctrl-C: nothing of this run is kept
        row.update(
            status=INTERRUPTED,
            error="stopped before its result was written",
            seconds=f"{time.perf_counter() - started:.2f}",
        )
    except Exception as error:  # a failing run is reported, the others go on
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        row.update(status=FAILED, error=message, seconds=f"{time.perf_counter() - started:.2f}")
        logger.debug("run %s failed", run.name, exc_info=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return row


def _read_heldout(final: Path, run: PlannedRun):
    """The run's held-out record (None: not asked for; False: asked for, not there)."""
    if run.heldout is None:
        return None
    from ..analysis.select_k import read_heldout

    record = read_heldout(final, run.heldout)
    return False if record is None else record


def _add_heldout(row: dict, record) -> None:
    """Held-out deviance per entry over the folds (mean, and its spread) in a summary row."""
    if not record:
        return
    import numpy as np

    values = np.asarray(record["heldout"], dtype=float)
    row["heldout_deviance"] = f"{values.mean():.8g}"
    row["heldout_sd"] = f"{values.std(ddof=1):.3g}" if values.size > 1 else ""
    row["heldout_record"] = record


class _StopRequests:
    """SIGINT while a study runs: the first asks the runs to stop after their iteration,
    the second stops them at once (nothing more of them is written)."""

    def __init__(self, event):
        self.event = event
        self.count = 0
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.count += 1
        self.event.set()
        if self.count == 1:
            logger.warning(
                "interrupted: the current runs stop after their iteration and are "
                "written as interrupted; Ctrl-C again stops them at once"
            )
        else:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def run_study(
    planned: list[PlannedRun], *, jobs: int = 1, force: bool = False, on_done=None
) -> tuple[list[dict], bool]:
    """Run every planned run, ``jobs`` at a time in separate processes.

    Returns
    -------
    rows : list of dict
        In plan order, each with its status (done, up to date, interrupted, failed,
        not started).
    interrupted : bool
        Whether Ctrl-C (SIGINT) stopped the study.
    """
    rows = [_row(run) for run in planned]
    if jobs <= 1 or len(planned) <= 1:
        stop = threading.Event()
        with _StopRequests(stop):
            for index, run in enumerate(planned):
                if stop.is_set():
                    break
                rows[index] = run_one(run, force, should_stop=stop.is_set)
                if rows[index]["status"] == INTERRUPTED:
                    stop.set()  # Ctrl-C reached the fit's own handler
                if on_done:
                    on_done(rows[index])
        return rows, stop.is_set()
    from .workers import run_in_workers

    return run_in_workers(planned, rows, jobs=jobs, force=force, on_done=on_done, stop_requests=_StopRequests)


def summary_csv(rows: list[dict]) -> str:
    """The summary table as CSV text."""
    buffer = io.StringIO()
    fields = SUMMARY_FIELDS + tuple(field for field in HELDOUT_FIELDS if any(field in row for row in rows))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({field: row.get(field, "") for field in fields})
    return buffer.getvalue()


def summary_table(rows: list[dict]) -> str:
    """The summary as aligned text columns for the terminal."""
    columns = ("name", "status", "final_objective", "n_iter", "seconds", "output")
    header = ["name", "status", "objective", "iterations", "seconds", "output / error"]
    if any("heldout_deviance" in row for row in rows):  # select_k: true
        columns = columns[:-1] + ("heldout_deviance", "suggested_k") + columns[-1:]
        header = header[:-1] + ["held-out deviance", "suggested k"] + header[-1:]
    table = [[str(row.get(c, "")) for c in columns] for row in rows]
    for line, row in zip(table, rows):
        if row.get("error"):
            line[-1] = row["error"]
    widths = [
        max(len(c), *(len(line[i]) for line in table)) if table else len(c) for i, c in enumerate(columns)
    ]
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines)
