"""A memory guard: refuse, with the size needed, what would not fit in memory."""

from __future__ import annotations

import os


class NotEnoughMemory(MemoryError, ValueError):
    """An array that would not fit in the memory available (one sentence with the sizes)."""


def available_memory_bytes() -> int | None:
    """Memory available to a new allocation (Linux MemAvailable; None when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n_bytes: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes:.0f} bytes"


def require_memory(n_bytes: float, what: str, advice: str, *, available: int | None = None) -> None:
    """Raise NotEnoughMemory when ``n_bytes`` exceed the memory available.

    Parameters
    ----------
    n_bytes : float
        Size of the dense array about to be made.
    what : str
        What it is ("a block of 64 rows of scan.pts").
    advice : str
        How to need less ("use --crop or a smaller --bin").
    available : int, optional
        Bytes available (default: :func:`available_memory_bytes`).
    """
    available = available_memory_bytes() if available is None else available
    if available is not None and n_bytes > available:
        raise NotEnoughMemory(
            f"{what} needs {format_bytes(n_bytes)} of memory at once, and only "
            f"{format_bytes(available)} is available; {advice}"
        )
