"""The data matrix X stored as its nonzeros, grouped by pixel.

The fast solver never needs the zero entries of X: the KL terms only involve X / (G W H)
where X > 0, and Σ G W H factorises into column sums of G W times row sums of H. So X is
kept as, for every pixel, the channel indices of its nonzero counts and the counts
(the CSR layout of the (n_pixels, n_channels) matrix the estimator receives, i.e. CSC of
the channels x pixels matrix of docs/solver.md), with compact types:

- ``channel_index``: uint16 when there are fewer than 65536 channels, else int32;
- ``counts``: float32 when every nonzero is exactly representable in float32 (integer
  counts below 2**24, float64 values that survive the cast, or float32 input), else
  float64 (so the kernels see the exact values and only two count types get compiled);
- ``pixel_start``: int64 pointers, pixel j's nonzeros are
  ``pixel_start[j]:pixel_start[j + 1]``.

The builders read dense arrays in blocks of pixels, so no dense float copy of X is ever
made; scipy.sparse input is converted without densifying; dask arrays are computed one
chunk at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["PixelNonzeros", "pixel_nonzeros_from_array"]

_FLOAT32_EXACT_INTEGER_LIMIT = 2**24
_UINT16_CHANNEL_LIMIT = 65536
_TARGET_BLOCK_ENTRIES = 1 << 22  # entries of X read at once from a dense or dask input


@dataclass(frozen=True)
class PixelNonzeros:
    """Nonzero counts of X grouped by pixel.

    Attributes
    ----------
    pixel_start : ndarray of int64, shape (n_pixels + 1,)
        Offsets: pixel ``j`` owns entries ``pixel_start[j]:pixel_start[j + 1]``.
    channel_index : ndarray of uint16 or int32, shape (nnz,)
        Channel of each nonzero, increasing within a pixel.
    counts : ndarray of float32 or float64, shape (nnz,)
        The nonzero values (all > 0).
    n_channels : int
        Number of energy channels.
    """

    pixel_start: np.ndarray
    channel_index: np.ndarray
    counts: np.ndarray
    n_channels: int

    @property
    def n_pixels(self) -> int:
        """Number of pixels."""
        return self.pixel_start.shape[0] - 1

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros."""
        return int(self.counts.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the three arrays."""
        return int(self.pixel_start.nbytes + self.channel_index.nbytes + self.counts.nbytes)

    def total_counts(self) -> float:
        """Σ X, accumulated in float64."""
        return float(np.sum(self.counts, dtype=np.float64))

    def xlogx_minus_x(self) -> float:
        """Σ (X log X − X) over the nonzeros: the data-only constant of the KL divergence."""
        values = self.counts.astype(np.float64)
        return float(np.sum(values * np.log(values) - values))

    def to_dense(self) -> np.ndarray:
        """Dense (n_pixels, n_channels) float64 copy; for tests and small data only."""
        return self.to_scipy().toarray()

    def to_scipy(self) -> sp.csr_matrix:
        """The same nonzeros as a scipy CSR matrix of shape (n_pixels, n_channels)."""
        return sp.csr_matrix(
            (self.counts, self.channel_index.astype(np.int64), self.pixel_start),
            shape=(self.n_pixels, self.n_channels),
        )


def _channel_index_dtype(n_channels: int) -> np.dtype:
    return np.dtype(np.uint16) if n_channels < _UINT16_CHANNEL_LIMIT else np.dtype(np.int32)


def _counts_dtype(values_dtype: np.dtype, values: np.ndarray) -> np.dtype:
    """float32 when every value survives the cast exactly, else float64."""
    if values_dtype == np.float32:
        return np.dtype(np.float32)
    if values_dtype == np.float64 and np.array_equal(values.astype(np.float32), values):
        return np.dtype(np.float32)
    if np.issubdtype(values_dtype, np.integer) or np.issubdtype(values_dtype, np.bool_):
        if values.size == 0 or values.max() < _FLOAT32_EXACT_INTEGER_LIMIT:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    return np.dtype(np.float64)


def _check_values(values: np.ndarray, name: str) -> None:
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values; only finite counts are allowed.")
    if values.min() < 0:
        raise ValueError(f"{name} has a negative entry ({values.min()!r}); counts must be nonnegative.")


def _from_scipy(matrix: sp.spmatrix | sp.sparray, name: str) -> PixelNonzeros:
    csr = sp.csr_matrix(matrix)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    _check_values(csr.data, name)
    n_pixels, n_channels = csr.shape
    counts_dtype = _counts_dtype(csr.data.dtype, csr.data)
    return PixelNonzeros(
        pixel_start=csr.indptr.astype(np.int64),
        channel_index=csr.indices.astype(_channel_index_dtype(n_channels)),
        counts=csr.data.astype(counts_dtype),
        n_channels=int(n_channels),
    )


def _block_nonzeros(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel nonzero count, channel indices and values of a (pixels, channels) block."""
    rows, cols = np.nonzero(block)
    values = block[rows, cols]
    per_pixel = np.bincount(rows, minlength=block.shape[0])
    return per_pixel, cols, values


def _from_blocks(blocks, n_pixels: int, n_channels: int, dtype: np.dtype, name: str) -> PixelNonzeros:
    """Assemble from an iterable of (pixels, channels) numpy blocks, in pixel order."""
    per_pixel_parts, index_parts, value_parts = [], [], []
    index_dtype = _channel_index_dtype(n_channels)
    for block in blocks:
        block = np.asarray(block)
        per_pixel, cols, values = _block_nonzeros(block)
        _check_values(values, name)
        per_pixel_parts.append(per_pixel)
        index_parts.append(cols.astype(index_dtype))
        value_parts.append(values)
    per_pixel = np.concatenate(per_pixel_parts) if per_pixel_parts else np.zeros(0, np.int64)
    pixel_start = np.zeros(n_pixels + 1, dtype=np.int64)
    np.cumsum(per_pixel, out=pixel_start[1:])
    values = np.concatenate(value_parts) if value_parts else np.zeros(0, dtype)
    counts_dtype = _counts_dtype(np.dtype(dtype), values)
    return PixelNonzeros(
        pixel_start=pixel_start,
        channel_index=(np.concatenate(index_parts) if index_parts else np.zeros(0, index_dtype)),
        counts=values.astype(counts_dtype, copy=False),
        n_channels=int(n_channels),
    )


def _pixels_per_block(n_channels: int) -> int:
    return max(1, _TARGET_BLOCK_ENTRIES // max(1, n_channels))


def _dense_blocks(array: np.ndarray):
    step = _pixels_per_block(array.shape[1])
    for start in range(0, array.shape[0], step):
        yield array[start : start + step]


def _block_triplets(block):
    """(row, column, value) of the nonzeros of a numpy, scipy or pydata-sparse block."""
    if hasattr(block, "to_scipy_sparse"):  # pydata sparse
        block = block.to_scipy_sparse()
    if sp.issparse(block):
        coo = sp.coo_matrix(block)
        keep = coo.data != 0
        return coo.row[keep], coo.col[keep], coo.data[keep]
    block = np.asarray(block)
    rows, cols = np.nonzero(block)
    return rows, cols, block[rows, cols]


def _from_dask(array, name):
    """Compute the dask array one chunk at a time, keeping only each chunk's nonzeros."""
    n_pixels, n_channels = array.shape
    row_offsets = np.concatenate([[0], np.cumsum(array.chunks[0])])
    col_offsets = np.concatenate([[0], np.cumsum(array.chunks[1])])
    pixel_parts, channel_parts, value_parts = [], [], []
    for i in range(len(array.chunks[0])):
        for j in range(len(array.chunks[1])):
            rows, cols, values = _block_triplets(array.blocks[i, j].compute())
            _check_values(values, name)
            pixel_parts.append(rows.astype(np.int64) + row_offsets[i])
            channel_parts.append(cols.astype(np.int64) + col_offsets[j])
            value_parts.append(values)
    pixels = np.concatenate(pixel_parts) if pixel_parts else np.zeros(0, np.int64)
    channels = np.concatenate(channel_parts) if channel_parts else np.zeros(0, np.int64)
    values = np.concatenate(value_parts) if value_parts else np.zeros(0, array.dtype)
    if len(array.chunks[1]) > 1:  # chunks side by side along channels: restore pixel order
        order = np.lexsort((channels, pixels))
        pixels, channels, values = pixels[order], channels[order], values[order]
    pixel_start = np.zeros(n_pixels + 1, dtype=np.int64)
    np.cumsum(np.bincount(pixels, minlength=n_pixels), out=pixel_start[1:])
    return PixelNonzeros(
        pixel_start=pixel_start,
        channel_index=channels.astype(_channel_index_dtype(n_channels)),
        counts=values.astype(_counts_dtype(np.dtype(array.dtype), values), copy=False),
        n_channels=int(n_channels),
    )


def pixel_nonzeros_from_array(X, name: str = "X") -> PixelNonzeros:
    """Build the by-pixel nonzero storage from an (n_pixels, n_channels) input.

    Parameters
    ----------
    X : ndarray, scipy.sparse matrix/array, dask array or PixelNonzeros
        Counts, pixels along the first axis (hyperspy's orientation). Integer, float32
        or float64; pydata ``sparse`` arrays too. Dense inputs are read a block of pixels
        at a time, dask arrays one chunk at a time (chunks may hold pydata sparse arrays).
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    PixelNonzeros

    Raises
    ------
    ValueError
        If X is not 2-D, or has negative, NaN or infinite entries.
    """
    if isinstance(X, PixelNonzeros):
        return X
    if sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_pixels, n_channels); got shape {X.shape}.")
        return _from_scipy(X, name)
    module = type(X).__module__.split(".")[0]
    if module in ("dask", "sparse"):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_pixels, n_channels); got shape {X.shape}.")
        if module == "sparse":
            return _from_scipy(X.to_scipy_sparse(), name)
        return _from_dask(X, name)
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_pixels, n_channels); got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold numbers; got dtype {array.dtype}.")
    return _from_blocks(_dense_blocks(array), array.shape[0], array.shape[1], array.dtype, name)
