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

import concurrent.futures
import csv
import dataclasses
import io
import itertools
import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any

from . import pipeline

logger = logging.getLogger(__name__)

STUDY_KEYS = ("output_dir", "defaults", "runs", "sweep")
SUMMARY_FIELDS = ("name", "status", "final_objective", "n_iter", "converged", "seconds", "output", "error")


@dataclasses.dataclass
class PlannedRun:
    """One run of a study: its name and full decompose configuration."""

    name: str
    config: dict


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
            if config.get("file") is not None:
                config["file"] = str((base / Path(str(config["file"])).expanduser()).resolve())
            # every run gets its own folder <root>/<name>: an output_dir given in the
            # defaults or a run is that run's root, never a folder runs would share
            root = Path(str(config["output_dir"])).expanduser() if config.get("output_dir") else output_root
            config["output_dir"] = str((base / root / name).resolve())
            planned.append(PlannedRun(name, config))
    return planned


def run_one(run: PlannedRun, force: bool = False) -> dict:
    """Run (or skip) one planned run; never raises: failures are reported in the row."""
    from ..io import file_sha256, read_config_hash, read_result

    row = {"name": run.name, "status": "", "final_objective": "", "n_iter": "", "converged": "",
           "seconds": "", "output": "", "error": ""}
    started = time.perf_counter()
    try:
        config = pipeline.full_config(run.config)
        target = pipeline.result_path(config)
        row["output"] = str(target)
        expected_hash = pipeline.config_hash(config, file_sha256(config["file"]))
        if not force and target.exists() and read_config_hash(target) == expected_hash:
            result = read_result(target)
            row.update(status="skipped (up to date)", final_objective=f"{result.final_objective:.6g}",
                       n_iter=result.n_iter, converged=result.converged,
                       seconds=f"{result.fit_seconds:.2f}")
            return row
        # a result from another configuration is stale: replace it
        outcome = pipeline.run_decomposition({**config, "overwrite": True})
        result = outcome.result
        row.update(status="ok", final_objective=f"{result.final_objective:.6g}", n_iter=result.n_iter,
                   converged=result.converged, seconds=f"{result.fit_seconds:.2f}")
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a failing run is reported, the others go on
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        row.update(status="failed", error=message, seconds=f"{time.perf_counter() - started:.2f}")
        logger.debug("run %s failed", run.name, exc_info=True)
    return row


def run_study(planned: list[PlannedRun], *, jobs: int = 1, force: bool = False, on_done=None) -> list[dict]:
    """Run every planned run, ``jobs`` at a time in separate processes; rows in plan order."""
    rows: list[dict | None] = [None] * len(planned)
    if jobs <= 1 or len(planned) <= 1:
        for index, run in enumerate(planned):
            rows[index] = run_one(run, force)
            if on_done:
                on_done(rows[index])
        return rows  # type: ignore[return-value]
    # spawn: a fresh interpreter per worker, safe with the threads numba and dask start
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(run_one, run, force): index for index, run in enumerate(planned)}
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            try:
                rows[index] = future.result()
            except Exception as error:  # the worker itself died
                rows[index] = {"name": planned[index].name, "status": "failed",
                               "error": f"worker failed: {error}", "output": ""}
            if on_done:
                on_done(rows[index])
    return rows  # type: ignore[return-value]


def summary_csv(rows: list[dict]) -> str:
    """The summary table as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({field: row.get(field, "") for field in SUMMARY_FIELDS})
    return buffer.getvalue()


def summary_table(rows: list[dict]) -> str:
    """The summary as aligned text columns for the terminal."""
    columns = ("name", "status", "final_objective", "n_iter", "seconds", "output")
    table = [[str(row.get(c, "")) for c in columns] for row in rows]
    for line, row in zip(table, rows):
        if row.get("error"):
            line[-1] = row["error"]
    widths = [max(len(c), *(len(line[i]) for line in table)) if table else len(c) for i, c in enumerate(columns)]
    header = ["name", "status", "objective", "iterations", "seconds", "output / error"]
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines)
