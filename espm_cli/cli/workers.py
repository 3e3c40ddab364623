"""Worker processes of ``espm batch --jobs N`` that never outlive the batch.

Each worker is a fresh interpreter (spawn: safe with the threads numba and dask
start) that takes runs from a queue. It ignores SIGINT: the parent decides, and
asks the running fits to stop after their iteration through a shared event. It
dies with its parent: on Linux the kernel kills it when the parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), elsewhere a watchdog thread notices that
the parent is gone; either way the next batch removes what it left.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading

from . import study

logger = logging.getLogger(__name__)

#: PR_SET_PDEATHSIG of <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
#: Seconds between the watchdog's looks at the parent.
_WATCH_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (its parent) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(_WATCH_SECONDS)

    threading.Thread(target=watch, name="espm-parent-watch", daemon=True).start()


def _worker_main(parent_pid, log_level, tasks, results, stop, force):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("espm: %(levelname)s: %(message)s"))
    package_logger = logging.getLogger("espm_cli")
    package_logger.handlers = [handler]
    package_logger.setLevel(log_level)
    package_logger.propagate = False
    while True:
        item = tasks.get()
        if item is None:
            return
        index, run = item
        results.put(("start", index, os.getpid()))
        row = study.run_one(run, force, should_stop=stop.is_set)
        results.put(("row", index, row))


def run_in_workers(planned, rows, *, jobs, force, on_done, stop_requests):
    """Run ``planned`` in ``jobs`` worker processes; fill ``rows``; (rows, interrupted)."""
    context = multiprocessing.get_context("spawn")
    tasks, results, stop = context.Queue(), context.Queue(), context.Event()
    for index, run in enumerate(planned):
        tasks.put((index, run))
    workers = []
    for _ in range(min(jobs, len(planned))):
        tasks.put(None)
    log_level = logging.getLogger("espm_cli").getEffectiveLevel()
    for _ in range(min(jobs, len(planned))):
        worker = context.Process(
            target=_worker_main, daemon=True, args=(os.getpid(), log_level, tasks, results, stop, force)
        )
        worker.start()
        workers.append(worker)
    by_pid = {worker.pid: worker for worker in workers}
    running: dict[int, int] = {}
    finished: set[int] = set()

    def finish(index, row):
        rows[index] = row
        finished.add(index)
        running.pop(index, None)
        if on_done:
            on_done(row)

    with stop_requests(stop):
        try:
            while len(finished) < len(planned):
                try:
                    kind, index, payload = results.get(timeout=0.2)
                except queue.Empty:
                    for index, pid in list(running.items()):
                        if not by_pid[pid].is_alive():
                            finish(
                                index,
                                {
                                    **rows[index],
                                    "status": study.FAILED,
                                    "error": f"worker died (exit code {by_pid[pid].exitcode})",
                                },
                            )
                    if not any(worker.is_alive() for worker in workers) and results.empty():
                        break  # every worker gone: the rest stay "not started"
                    continue
                if kind == "start":
                    running[index] = payload
                else:
                    finish(index, payload)
        except KeyboardInterrupt:  # the second Ctrl-C: stop the runs at once
            for worker in workers:
                worker.kill()
            for index in list(running):
                finish(
                    index,
                    {
                        **rows[index],
                        "status": study.INTERRUPTED,
                        "error": "stopped before its result was written",
                    },
                )
        finally:
            for worker in workers:
                worker.join(timeout=5)
                if worker.is_alive():
                    worker.kill()
                    worker.join()
            for queue_ in (tasks, results):
                queue_.cancel_join_thread()
                queue_.close()
    return rows, stop.is_set()
