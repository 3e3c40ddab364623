"""One sentence for what a file reader raised: the cause in the user's words.

Readers raise anything (a TypeError deep in dask, a StopIteration in a Cython
decoder, h5py's "file signature not found"); the message names the file and what
is most likely wrong with it, never the reader's internals.
"""

from __future__ import annotations

from pathlib import Path

#: Exceptions that come from inside a reader that met bytes it did not expect.
_INTERNAL = (
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    StopIteration,
    ZeroDivisionError,
    UnicodeDecodeError,
    EOFError,
    OverflowError,
)


def reader_reason(error: BaseException, path: Path) -> str:
    """Why ``path`` could not be read, in a few words (no newline)."""
    text = " ".join(str(error).split())
    suffix = path.suffix.lower() or "this"
    if isinstance(error, ImportError):
        package = getattr(error, "name", None) or text
        return f"reading {suffix} files needs the Python package {package}; install it"
    if "file signature not found" in text:
        return "not an HDF5 file"
    if "Lazy loading is not supported" in text:
        return f"{suffix} files hold single spectra, not spectrum images"
    if isinstance(error, _INTERNAL) or "truth value of an empty array" in text or not text:
        return f"not a valid {suffix} file, or the file is damaged"
    return text


def damaged_file_reason(error: BaseException, path: Path) -> str:
    """Why the counts of ``path`` could not be read after its header was (truncated file)."""
    text = " ".join(str(error).split())
    if isinstance(error, (MemoryError,)):
        return "not enough memory to read it"
    if isinstance(error, _INTERNAL) or not text or isinstance(error, (OSError, ValueError)):
        return "the file is truncated or damaged"
    return f"the file is truncated or damaged ({text})"


def truncation_reason(path: Path) -> str | None:
    """Why ``path`` is shorter than its own header says, or None (checked formats: .bcf).

    A truncated Bruker .bcf makes the reader read past the end of its memory map:
    the process dies of SIGBUS or SIGSEGV, or the counts read as zeros. Its SFS
    container header gives the chunk size and the number of chunks, so the length
    the file must have is known before any reader touches it.
    """
    import struct

    if path.suffix.lower() != ".bcf":
        return None
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if handle.read(8) != b"AAMVHFSS":
                return None  # not an SFS container: the reader says what it is
            handle.seek(0x124)
            _, chunk_size = struct.unpack("<fI", handle.read(8))
            handle.seek(0x140)
            _, _, n_chunks = struct.unpack("<III", handle.read(12))
    except (OSError, struct.error):
        return None
    expected = 0x118 + chunk_size * n_chunks
    if size < expected:
        return (
            f"the file is truncated: {size} bytes where its header promises {expected} "
            "(copy it again from the microscope computer)"
        )
    return None
