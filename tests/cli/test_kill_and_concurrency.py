"""Ctrl-C and kill -9 of decompose and batch --jobs 2 (in subprocesses, bounded in time),
then a rerun; two writers into one folder.

Each subprocess test waits for a log line that says the work has started (the counts
are loaded), then signals it after a random delay.
"""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espm_cli.cli import study
from espm_cli.cli.main import cli
from espm_cli.io import read_result
from espm_cli.io.folder_lock import folder_lock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and prctl: Linux")

ESPM = [sys.executable, "-c", "from espm_cli.cli.main import cli; cli()"]
TIMEOUT = 60


def start(args, cwd):
    return subprocess.Popen(
        [*ESPM, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_lines(process, fragment, count=1, timeout=TIMEOUT):
    """Read stderr until ``count`` lines hold ``fragment``; return what was read."""
    deadline, seen, lines = time.monotonic() + timeout, 0, []
    while seen < count:
        assert time.monotonic() < deadline, "".join(lines)
        line = process.stderr.readline()
        assert line or process.poll() is None, "".join(lines)
        lines.append(line)
        seen += fragment in line
    return "".join(lines)


def no_temporary_files(folder):
    return [
        p for p in Path(folder).rglob("*") if ".part" in p.name or ".staging-" in p.name or ".old-" in p.name
    ]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped) counts as dead
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def all_gone(pids, timeout=10):
    """Whether every process in ``pids`` has ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


#: The bundled sample: its fit to a flat objective (tol 0) takes seconds, so a Ctrl-C sent
#: within a second of the fit's start lands in the fit (the small test image's fit can be
#: over by then, and a Ctrl-C after the fit is an abort).
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sample.hspy"


def test_decompose_sigint_writes_interrupted_result_and_exits_130(runner, tmp_path):
    import shutil

    image = tmp_path / "small.hspy"
    shutil.copy(SAMPLE, image)
    out = image.parent / "out"
    process = start(
        ["-v", "decompose", str(image), "--max-iter", "1000000", "--tol", "0", "-o", str(out)], image.parent
    )
    try:
        wait_for_lines(process, "fitting 3 phases")
        # a second writer into the same folder is refused at once, with one line
        second = runner.invoke(cli, ["decompose", str(image), "-o", str(out), "--overwrite"])
        assert second.exit_code == 1, second.output
        assert second.stderr.strip().count("\n") == 0
        assert "being written by another espm run" in second.stderr
        time.sleep(random.uniform(0.0, 1.0))  # in the fit (a Ctrl-C before it aborts)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    saved = read_result(out / "small.h5")
    assert not saved.converged and saved.n_iter >= 1
    assert no_temporary_files(out) == []


def test_decompose_sigkill_then_rerun(runner, small_image):
    image, _ = small_image
    out = image.parent / "out"
    process = start(
        ["-v", "decompose", str(image), "--max-iter", "1000000", "--tol", "0", "-o", str(out)], image.parent
    )
    try:
        wait_for_lines(process, "loaded small.hspy")
        time.sleep(random.uniform(0.0, 0.5))
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)
    (out / ".small.abc123.part.h5").write_bytes(b"half a file")  # as a kill mid-write leaves
    rerun = runner.invoke(
        cli, ["decompose", str(image), "--max-iter", "3", "-o", str(out), "--overwrite", "-q"]
    )
    assert rerun.exit_code == 0, rerun.output  # the dead writer's lock went with it
    assert no_temporary_files(out) == []
    assert read_result(out / "small.h5").n_iter == 3


def write_long_study(folder, image, max_iter=1000000):
    path = folder / "study.yaml"
    path.write_text(
        f"output_dir: results\ndefaults:\n  max_iter: {max_iter}\n  tol: 0\n"
        f"runs:\n  - file: {image.name}\n    name: s\n"
        "sweep:\n  n_components: [2, 3, 4]\n"
    )
    return path


def read_summary(folder):
    with open(folder / "summary.csv") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def test_batch_jobs2_sigint_stops_the_runs_and_writes_the_summary(small_image):
    image, _ = small_image
    study_file = write_long_study(image.parent, image)
    process = start(["-v", "batch", str(study_file), "--jobs", "2"], image.parent)
    try:
        wait_for_lines(process, "loaded small.hspy", count=2)
        workers = children(process.pid)
        time.sleep(random.uniform(0.2, 1.0))
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    results = image.parent / "results"
    rows = read_summary(results)
    assert sorted(row["status"] for row in rows.values()) == ["interrupted", "interrupted", "not started"]
    assert no_temporary_files(results) == []
    assert all_gone(workers)
    # an interrupted run is complete but marked so: never taken as up to date
    for name, row in rows.items():
        if row["status"] == "interrupted":
            saved = read_result(Path(row["output"]))
            assert not saved.converged
            assert study.run_status(results / name, saved.config_hash) == "interrupted"


def test_batch_jobs2_sigkill_of_the_parent_takes_the_workers(small_image):
    image, _ = small_image
    study_file = write_long_study(image.parent, image)
    process = start(["-v", "batch", str(study_file), "--jobs", "2"], image.parent)
    try:
        wait_for_lines(process, "loaded small.hspy", count=2)
        workers = children(process.pid)
        assert len(workers) >= 2
        time.sleep(random.uniform(0.0, 0.5))
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)
    assert all_gone(workers), "a worker outlived the batch"
    results = image.parent / "results"
    # what a kill mid-write leaves: a staging folder and a temporary file
    (results / ".s_n_components2.staging-999").mkdir(parents=True, exist_ok=True)
    (results / ".s_n_components2.staging-999" / "small.h5").write_bytes(b"half")
    assert not (results / "summary.csv").exists()
    from click.testing import CliRunner

    rerun = CliRunner().invoke(cli, ["batch", str(write_long_study(image.parent, image, 3)), "-q"])
    assert rerun.exit_code == 0, rerun.output
    assert [row["status"] for row in read_summary(results).values()] == ["done"] * 3
    assert no_temporary_files(results) == []


def test_second_writer_is_refused_and_leaves_nothing(runner, small_image):
    image, _ = small_image
    out = image.parent / "taken"
    with folder_lock(out):
        result = runner.invoke(cli, ["decompose", str(image), "-o", str(out), "--max-iter", "3"])
        assert result.exit_code == 1, result.output
        assert result.output.strip().count("\n") == 0
        assert "being written by another espm run" in result.output
        assert list(out.iterdir()) == []
        study_file = image.parent / "study.yaml"
        study_file.write_text(f"output_dir: taken\nruns:\n  - file: {image.name}\n")
        refused = runner.invoke(cli, ["batch", str(study_file)])
        assert refused.exit_code == 1 and "being written by another espm run" in refused.output
    assert not out.exists()  # the lock's folder was made for it and is empty: removed
    assert (
        runner.invoke(cli, ["decompose", str(image), "-o", str(out), "--max-iter", "3", "-q"]).exit_code == 0
    )
