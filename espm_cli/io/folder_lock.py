"""One writer per output folder: an advisory lock on the folder itself.

The lock is ``flock`` on the folder's own file descriptor (Linux, macOS): no lock
file is left behind, and the kernel releases it when the holder dies, even by
SIGKILL, so a crashed run never blocks the next one. Temporary files that a dead
writer left (``atomic_path``'s ``.<stem>.*.part<suffix>``) are removed once the
lock is held: nobody else can be writing them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one writer is on trust
    fcntl = None

logger = logging.getLogger(__name__)


class FolderBusy(OSError):
    """Another run is writing into the folder (one sentence)."""


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the ones created (deepest last)."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            for done in reversed(created):
                with contextlib.suppress(OSError):
                    done.rmdir()
            raise PermissionError(
                f"output directory {folder} is not writable ({error.strerror or error})"
            ) from None
        created.append(path)
    if not folder.is_dir():
        raise PermissionError(f"output directory {folder} is not writable (not a folder)")
    return created


def remove_partial_files(folder: Path) -> list[Path]:
    """Remove the temporary files of interrupted atomic writes in ``folder``.

    Call only while holding the folder's lock.
    """
    removed = []
    for path in folder.glob(".*.part*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        logger.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), folder)
    return removed


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, clean_partial_files: bool = True) -> Iterator[Path]:
    """Hold the only write lock on ``folder`` (created if needed) for the block.

    A folder this call created is removed again if the block leaves it empty (a
    refused or failed run leaves nothing behind).

    Raises
    ------
    FolderBusy
        When another process holds the lock: one line naming the folder.
    PermissionError
        When the folder cannot be created.
    """
    folder = Path(folder)
    created = _make_folders(folder)
    descriptor = None
    try:
        if fcntl is not None:
            descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(
                    f"output folder {folder} is being written by another espm run; "
                    "wait for it to finish or choose another output folder"
                ) from None
            # the folder may have been removed (and made again) while we waited
            if not folder.is_dir() or not os.path.samestat(os.fstat(descriptor), os.stat(folder)):
                raise FolderBusy(f"output folder {folder} was replaced while this run started; run again")
        if clean_partial_files:
            remove_partial_files(folder)
        yield folder
    finally:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds when empty
        if descriptor is not None:
            os.close(descriptor)  # releases the lock
