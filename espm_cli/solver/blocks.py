"""Block-wise data: dask arrays (hyperspy's lazy signals) read one block of pixels at a time.

The estimator never densifies a dask array. :func:`lazy_counts` computes it one row of
chunks at a time (all the channel chunks of a run of pixels), keeps that block's nonzeros
and drops the block, so the memory of the fit grows with the number of nonzero counts,
not with pixels x channels. What comes out is a scipy CSR matrix of the nonzeros, which
the estimator validates and fits exactly as it does any sparse input (NaN entries are
kept as stored entries and so stay missing data; negative or infinite values are refused
by the same checks, with the same messages).

:func:`row_blocks` cuts a pixel grid into blocks of whole image rows (what the
Laplacian's one-row halo and the mini-batch and distributed fits work on).
"""

import ctypes
import sys

import numpy as np
import scipy.sparse as sp

__all__ = ["is_lazy", "lazy_counts", "row_blocks"]


def is_lazy(X):
    """Whether X is a dask array (duck-typed: dask is not imported).

    Parameters
    ----------
    X : object

    Returns
    -------
    bool
    """
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks") and hasattr(X, "blocks")


def _block_csr(block):
    """A computed block (numpy, masked, scipy or pydata-sparse) as CSR, zeros not stored."""
    if hasattr(block, "to_scipy_sparse"):  # pydata sparse (rosettasciio's bcf / pts)
        block = block.to_scipy_sparse()
    if sp.issparse(block):
        csr = sp.csr_matrix(block)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        csr.sort_indices()
        return csr
    if isinstance(block, np.ma.MaskedArray):  # masked entries are missing: NaN
        block = np.ma.filled(block.astype(np.float64), np.nan)
    return sp.csr_matrix(np.asarray(block))


def lazy_counts(X, name="X"):
    """The nonzeros of a 2-D dask array (n_pixels, n_channels), read block by block.

    Each row of chunks (every channel chunk of a run of pixels) is computed once, turned
    into CSR and dropped, so at most one such block is dense at a time.

    Parameters
    ----------
    X : dask.array.Array of shape (n_pixels, n_channels)
        Numeric; chunks may hold numpy, masked or pydata-sparse arrays.
    name : str, default="X"
        Used in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_pixels, n_channels)
        X's dtype (integer counts stay integers), int32 or int64 indices.

    Raises
    ------
    ValueError
        If X is not 2-D or does not hold real numbers.
    """
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_pixels, n_channels); got a dask array with "
            f"shape {X.shape}. Reshape it (hyperspy: s.data.reshape(-1, n_channels))."
        )
    dtype = np.dtype(X.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or dtype.kind == "c":
        raise ValueError(f"{name} has dtype {dtype}; it must hold real numbers (counts).")
    n_pixels, n_channels = (int(n) for n in X.shape)
    values_dtype = np.float64 if dtype == np.bool_ else dtype
    per_pixel, index_parts, value_parts = [], [], []
    for i in range(len(X.chunks[0])):
        # one row of chunks, all channels: a single compute, each chunk read once
        csr = _block_csr(X.blocks[i, :].compute())
        per_pixel.append(np.diff(csr.indptr))
        index_parts.append(csr.indices)
        value_parts.append(csr.data.astype(values_dtype, copy=False))
        del csr
    nnz = sum(part.shape[0] for part in value_parts)
    index_dtype = np.int32 if max(nnz, n_channels) < 2**31 else np.int64
    indptr = np.zeros(n_pixels + 1, dtype=index_dtype)
    if per_pixel:
        np.cumsum(np.concatenate(per_pixel), out=indptr[1:])
    indices = np.empty(nnz, index_dtype)
    data = np.empty(nnz, values_dtype)
    offset = 0
    while value_parts:  # assemble, freeing each part as it is copied
        values, columns = value_parts.pop(0), index_parts.pop(0)
        indices[offset : offset + values.shape[0]] = columns
        data[offset : offset + values.shape[0]] = values
        offset += values.shape[0]
    values = columns = None  # the last part too
    release_freed_memory()
    return sp.csr_matrix((data, indices, indptr), shape=(n_pixels, n_channels))


def release_freed_memory():
    """Hand the memory freed by the block reads back to the operating system.

    glibc keeps freed memory in its per-thread arenas, and the reads (dask's threads
    decompressing chunks, each block's dense copy and CSR) leave much of it there: at
    1024 x 1024 x 2048 the lazy fit's peak resident memory was 3.06 GB with it kept and
    2.50 GB with ``malloc_trim(0)`` before the backend's copy is made (one probe of each;
    docs/large_data.md). Elsewhere (no glibc) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def row_blocks(shape_2d, rows_per_block):
    """Pixel ranges of blocks of whole image rows.

    Parameters
    ----------
    shape_2d : (int, int)
        (ny, nx) of the pixel grid (pixel ``iy * nx + ix``).
    rows_per_block : int

    Returns
    -------
    list of (int, int)
        Image-row ranges ``[row_start, row_stop)``, in order, covering every row.
    """
    ny = int(shape_2d[0])
    rows_per_block = max(1, int(rows_per_block))
    return [(start, min(ny, start + rows_per_block)) for start in range(0, ny, rows_per_block)]
