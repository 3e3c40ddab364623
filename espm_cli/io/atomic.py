"""Write files whole or not at all: a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary file lives in the target's folder (so that ``os.replace`` is an
    atomic rename on the same file system) and is removed if the block raises.

    Parameters
    ----------
    target : str or pathlib.Path
        The final file name.

    Yields
    ------
    pathlib.Path
        Where to write.
    """
    target = Path(target)
    # keep the suffix: writers such as hyperspy choose the format from it
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent
    )
    os.close(handle)
    temporary = Path(temporary)
    # mkstemp makes the file private (0600); give it the usual permissions
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8) and return the path."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)


def check_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be written in it.

    Raises
    ------
    PermissionError
        With one sentence naming the folder, when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise PermissionError(
            f"output directory {folder} is not writable ({error.strerror or error})"
        ) from error
    return folder
