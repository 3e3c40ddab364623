"""Load a spectrum image from any file hyperspy reads, without densifying it.

The counts are read lazily, block of rows by block of rows, cropped, binned and
cut to an energy window on the way, and kept as integer counts: as a CSR matrix
of the nonzeros when the image is sparse (the usual case for EDX) or as a dense
integer array when it is not. A 512 x 512 x 4096 JEOL file holding 300 thousand
counts thus takes a few megabytes, not 8.6 GB of float64.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from .acquisition import AcquisitionParameters, acquisition_from_metadata
from .memory import format_bytes, require_memory
from .read_errors import damaged_file_reason, reader_reason, truncation_reason

logger = logging.getLogger(__name__)

#: Above this nonzero fraction a (small enough) image is kept dense.
DENSE_NONZERO_FRACTION = 0.3
#: Never hold a dense copy of the counts larger than this many bytes.
MAX_DENSE_BYTES = 512 * 2**20
#: Bytes of dense counts read from the file at once.
READ_BLOCK_BYTES = 64 * 2**20
#: Reading more dense bytes than this gets a log line first (it takes a while).
LARGE_READ_BYTES = 256 * 2**20


class SpectrumImageError(ValueError):
    """A file that cannot be used as a spectrum image (one clear sentence)."""


class ProcessingOptionError(ValueError):
    """A crop, bin factor or energy range that does not fit the image.

    Attributes
    ----------
    parameter : str
        ``"crop"``, ``"bin_factor"`` or ``"energy_range"``.
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


@dataclasses.dataclass
class SpectrumImage:
    """Counts of a spectrum image, unfolded to (pixels, channels), with its axes.

    Attributes
    ----------
    counts : numpy.ndarray or scipy.sparse.csr_matrix
        (n_pixels, n_channels) counts, pixels in C order (row by row), in the
        file's integer dtype (or a wider one after binning).
    shape_2d : tuple of int
        (ny, nx) of the pixel grid.
    energy_offset_keV, energy_scale_keV : float
        Energy of the first channel and the channel width.
    acquisition : AcquisitionParameters
        Parameters read from the metadata.
    path : pathlib.Path
        The file it came from.
    pixel_size : float or None
        Pixel width in ``pixel_unit`` (after binning), None when the file has none.
    pixel_unit : str or None
    signal_type : str
    processing : dict
        The crop, bin factor and energy window applied, and the original shape.
    """

    counts: Any
    shape_2d: tuple[int, int]
    energy_offset_keV: float
    energy_scale_keV: float
    acquisition: AcquisitionParameters
    path: Path
    pixel_size: float | None = None
    pixel_unit: str | None = None
    signal_type: str = ""
    processing: dict = dataclasses.field(default_factory=dict)
    _lazy_totals: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def is_lazy(self) -> bool:
        """Whether the counts are a dask array over the file (``lazy=True``)."""
        return hasattr(self.counts, "dask")

    def _totals(self) -> dict:
        """Lazy counts: channel totals, pixel totals and nonzeros, in one pass, once."""
        if not self._lazy_totals:
            import dask

            counts = self.counts
            channel, pixel, nnz = dask.compute(
                counts.sum(axis=0, dtype=np.float64),
                counts.sum(axis=1, dtype=np.float64),
                (counts != 0).sum(),
            )
            self._lazy_totals.update(channel=np.asarray(channel), pixel=np.asarray(pixel), nnz=int(nnz))
        return self._lazy_totals

    @property
    def n_pixels(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.counts.shape[1])

    @property
    def energy(self) -> np.ndarray:
        """Channel energies in keV, shape (n_channels,)."""
        return self.energy_offset_keV + self.energy_scale_keV * np.arange(self.n_channels)

    @property
    def is_sparse(self) -> bool:
        return scipy.sparse.issparse(self.counts)

    @property
    def nnz(self) -> int:
        if self.is_lazy:
            return self._totals()["nnz"]
        if self.is_sparse:
            return int(self.counts.nnz)
        return int(np.count_nonzero(self.counts))

    @property
    def nonzero_fraction(self) -> float:
        return self.nnz / max(1, self.n_pixels * self.n_channels)

    @property
    def total_counts(self) -> float:
        if self.is_lazy:
            return float(self._totals()["channel"].sum())
        return float(self.counts.sum(dtype=np.float64))

    def select_channels(self, start: int, stop: int) -> SpectrumImage:
        """A view of channels [start, stop) (same pixels), with the energy axis shifted."""
        if not 0 <= start < stop <= self.n_channels:
            raise ValueError(f"channel window {start}-{stop} must lie within 0-{self.n_channels}")
        processing = dict(self.processing)
        first = processing.get("channel_window", [0, self.n_channels])[0]
        processing["channel_window"] = [first + start, first + stop]
        return dataclasses.replace(
            self,
            counts=self.counts[:, start:stop],
            energy_offset_keV=self.energy_offset_keV + start * self.energy_scale_keV,
            processing=processing,
        )

    def mean_spectrum(self) -> np.ndarray:
        """Mean counts per pixel in each channel, shape (n_channels,)."""
        if self.is_lazy:
            return self._totals()["channel"] / self.n_pixels
        return np.asarray(self.counts.sum(axis=0, dtype=np.float64)).ravel() / self.n_pixels

    def counts_per_pixel(self) -> np.ndarray:
        """Total counts of each pixel, shape (ny, nx)."""
        if self.is_lazy:
            return self._totals()["pixel"].reshape(self.shape_2d)
        per_pixel = np.asarray(self.counts.sum(axis=1, dtype=np.float64)).ravel()
        return per_pixel.reshape(self.shape_2d)


@contextlib.contextmanager
def _quiet_readers():
    """Silence hyperspy's and the readers' own log output (we report errors ourselves)."""
    loggers = [logging.getLogger(name) for name in ("hyperspy", "rsciio", "RosettaSciIO", "exspy")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _load_signals(path: Path) -> list:
    """``hyperspy.api.load(path, lazy=True)`` as a list, with one-line errors."""
    if not path.exists():
        raise SpectrumImageError(f"file not found: {path}")
    if not path.is_file() and not (path.is_dir() and path.suffix.lower() == ".zspy"):
        raise SpectrumImageError(f"not a file: {path} (of folders, only .zspy is read)")
    truncated = truncation_reason(path)
    if truncated:
        raise SpectrumImageError(f"cannot read {path.name}: {truncated}")
    with warnings.catch_warnings():
        # hyperspy and its extensions warn about their own deprecations on import
        warnings.simplefilter("ignore")
        import hyperspy.api as hs  # heavy: imported only when a file is read

    with warnings.catch_warnings(), _quiet_readers():  # after the import, which sets levels
        warnings.simplefilter("ignore")
        try:
            loaded = hs.load(str(path), lazy=True)
        except Exception as error:  # readers raise anything: report it in one line
            reason = reader_reason(error, path)
            raise SpectrumImageError(f"cannot read {path.name} as a spectrum image ({reason})") from error
    return loaded if isinstance(loaded, list) else [loaded]


def _pick_spectrum_image(signals: list, path: Path):
    """The spectrum image among the signals of a file (the largest one)."""
    spectra = [s for s in signals if s.axes_manager.signal_dimension == 1]
    images = [s for s in spectra if s.axes_manager.navigation_dimension >= 1]
    if not images:
        if spectra:
            raise SpectrumImageError(
                f"{path.name} holds a single spectrum, not a spectrum image "
                "(a grid of pixels, each with a spectrum)"
            )
        raise SpectrumImageError(
            f"{path.name} holds only images, no spectrum image (a grid of pixels, each with a spectrum)"
        )
    eds = [s for s in images if "EDS" in str(s.metadata.get_item("Signal.signal_type", ""))]
    candidates = eds or images
    chosen = max(candidates, key=lambda s: s.axes_manager.navigation_size)
    if chosen.axes_manager.navigation_dimension > 2:
        raise SpectrumImageError(
            f"{path.name} has {chosen.axes_manager.navigation_dimension} navigation "
            "dimensions; only 1-D line scans and 2-D spectrum images are supported"
        )
    return chosen


def _energy_axis_keV(signal, path: Path) -> tuple[float, float]:
    axis = signal.axes_manager.signal_axes[0]
    if not getattr(axis, "is_uniform", True):
        raise SpectrumImageError(f"{path.name} has a non-uniform energy axis; a uniform one is required")
    unit = str(axis.units).strip()
    factor = {"ev": 1e-3, "kev": 1.0}.get(unit.lower(), 1.0)
    if unit.lower() not in ("ev", "kev"):
        logger.warning("energy axis unit %r of %s not recognised: assuming keV", unit, path.name)
    return float(axis.offset) * factor, float(axis.scale) * factor


def _channel_window(
    energy_range: Sequence[float] | None, offset: float, scale: float, size: int
) -> tuple[int, int]:
    """Channel slice [start, stop) covering ``energy_range`` keV on the axis."""
    if energy_range is None:
        return 0, size
    low, high = (float(value) for value in energy_range)
    axis_low, axis_high = offset, offset + scale * (size - 1)
    if not low < high:
        raise ProcessingOptionError(
            "energy_range", f"energy_range must be LOW < HIGH in keV, got {low:g} {high:g}"
        )
    if high < axis_low or low > axis_high:
        raise ProcessingOptionError(
            "energy_range",
            f"energy_range {low:g}-{high:g} keV lies outside the energy axis "
            f"({axis_low:.3f} to {axis_high:.3f} keV)",
        )
    start = max(0, math.ceil((low - offset) / scale - 1e-9))
    stop = min(size, math.floor((high - offset) / scale + 1e-9) + 1)
    if low < axis_low or high > axis_high:
        logger.warning(
            "energy range %g-%g keV clipped to the axis (%.3f to %.3f keV)",
            low,
            high,
            axis_low,
            axis_high,
        )
    if stop - start < 2:
        raise ProcessingOptionError(
            "energy_range", f"energy_range {low:g}-{high:g} keV covers fewer than 2 channels"
        )
    return start, stop


def _pixel_window(crop: Sequence[int] | None, ny: int, nx: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) from a crop given as X Y WIDTH HEIGHT."""
    if crop is None:
        return 0, ny, 0, nx
    x0, y0, width, height = (int(value) for value in crop)
    if min(x0, y0) < 0 or min(width, height) < 1 or x0 + width > nx or y0 + height > ny:
        raise ProcessingOptionError(
            "crop",
            f"crop X Y WIDTH HEIGHT = {x0} {y0} {width} {height} must lie inside the "
            f"image of {nx} pixels across and {ny} down (non-negative origin, size at least 1)",
        )
    return y0, y0 + height, x0, x0 + width


def _bin_block(block: np.ndarray, factor: int) -> np.ndarray:
    """Sum factor x factor pixels of a (rows, cols, channels) block."""
    if factor == 1:
        return block
    rows, cols, channels = block.shape
    rows, cols = rows // factor * factor, cols // factor * factor
    block = block[:rows, :cols]
    wide = np.uint64 if block.dtype.kind == "u" else (np.int64 if block.dtype.kind == "i" else block.dtype)
    return block.reshape(rows // factor, factor, cols // factor, factor, channels).sum(
        axis=(1, 3), dtype=wide
    )


def _narrowest_integer(counts):
    """Cast integer counts to the narrowest unsigned type that holds them."""
    values = counts.data if scipy.sparse.issparse(counts) else counts
    if values.dtype.kind not in "ui" or values.size == 0 or values.min() < 0:
        return counts
    target = np.min_scalar_type(int(values.max()))
    if target == values.dtype:
        return counts
    return counts.astype(target)


def load_spectrum_image(
    path: str | Path,
    *,
    crop: Sequence[int] | None = None,
    bin_factor: int = 1,
    energy_range: Sequence[float] | None = None,
    check_header: Callable[[AcquisitionParameters, tuple], None] | None = None,
    signed: bool = False,
    lazy: bool = False,
) -> SpectrumImage:
    """Read a spectrum image lazily, crop, bin and cut it, keeping integer counts.

    Parameters
    ----------
    path : str or pathlib.Path
        Any file ``hyperspy.api.load`` reads. A file holding several signals (a
        Bruker .bcf, a Velox .emd) gives its largest EDS spectrum image.
    crop : sequence of 4 int, optional
        Pixel window X Y WIDTH HEIGHT (column and row of the top-left pixel).
    bin_factor : int, default 1
        Sum ``bin_factor`` x ``bin_factor`` pixels (after cropping); edge pixels
        that do not fill a bin are dropped.
    energy_range : (float, float), optional
        Keep only the channels from LOW to HIGH keV.
    check_header : callable, optional
        ``check_header(acquisition, (ny, nx, n_channels))`` once the metadata are
        known and before any count is read: cheap checks that may raise.
    signed : bool, default False
        Accept negative values (data that are no longer counts, for a loss that is
        defined on them: the Frobenius loss, semi-NMF).
    lazy : bool, default False
        Keep the counts as a dask array over the file (cropped, binned and cut
        lazily, in blocks of whole rows): nothing is read here; the fit reads the
        blocks one at a time and keeps only their nonzeros
        (:func:`espm_cli.solver.blocks.lazy_counts`). Totals are computed in one pass
        when first asked for.

    Returns
    -------
    SpectrumImage

    Raises
    ------
    SpectrumImageError
        The file is missing, unreadable, or holds no spectrum image.
    ValueError
        ``crop``, ``bin_factor`` or ``energy_range`` do not fit the image.
    """
    path = Path(path)
    signal = _pick_spectrum_image(_load_signals(path), path)
    data = signal.data
    if signal.axes_manager.navigation_dimension == 1:
        data = data[None]
    ny, nx, n_channels = (int(n) for n in data.shape)
    if np.dtype(data.dtype).kind not in "uif":
        raise SpectrumImageError(f"{path.name} holds {data.dtype} data, not counts")
    signal_type = str(signal.metadata.get_item("Signal.signal_type", ""))
    if check_header is not None:
        check_header(acquisition_from_metadata(signal.metadata, signal_type), (ny, nx, n_channels))

    offset, scale = _energy_axis_keV(signal, path)
    channel_start, channel_stop = _channel_window(energy_range, offset, scale, n_channels)
    y0, y1, x0, x1 = _pixel_window(crop, ny, nx)
    bin_factor = int(bin_factor)
    if bin_factor < 1 or bin_factor > min(y1 - y0, x1 - x0):
        raise ProcessingOptionError(
            "bin_factor",
            f"bin_factor {bin_factor} must be between 1 and the image's smaller side "
            f"({min(y1 - y0, x1 - x0)} pixels after cropping)",
        )

    width = channel_stop - channel_start
    row_bytes = max(1, (x1 - x0) * width * np.dtype(data.dtype).itemsize)
    rows_per_block = max(bin_factor, READ_BLOCK_BYTES // row_bytes // bin_factor * bin_factor)
    usable_rows = (y1 - y0) // bin_factor * bin_factor
    itemsize = np.dtype(data.dtype).itemsize
    # a block as read, plus its binned sum in 64-bit integers
    block_bytes = rows_per_block * row_bytes * (1 + (8 / itemsize if bin_factor > 1 else 0))
    require_memory(
        block_bytes,
        f"reading {path.name} in blocks of {rows_per_block} rows",
        "use --crop or a smaller --bin",
    )
    stored_bytes = usable_rows * row_bytes
    if stored_bytes > LARGE_READ_BYTES:
        logger.warning(
            "reading %s: %d x %d pixels x %d channels (%s as stored); this can take a minute",
            path.name,
            usable_rows,
            x1 - x0,
            width,
            format_bytes(stored_bytes),
        )
    if lazy:
        return _lazy_image(
            signal,
            data,
            path,
            signal_type,
            (y0, x0, x1, usable_rows),
            (channel_start, channel_stop),
            bin_factor,
            rows_per_block,
            offset,
            scale,
            (ny, nx, n_channels),
            crop,
        )
    blocks = []
    for row in range(y0, y0 + usable_rows, rows_per_block):
        stop = min(row + rows_per_block, y0 + usable_rows)
        block = data[row:stop, x0:x1, channel_start:channel_stop]
        try:
            block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        except Exception as error:  # a header that promises more than the file holds
            raise SpectrumImageError(
                f"cannot read the counts of {path.name}: {damaged_file_reason(error, path)}"
            ) from error
        if block.dtype.kind == "f" and np.isnan(block).any():
            raise SpectrumImageError(f"{path.name} contains NaN counts")
        if not signed and block.size and block.min() < 0:
            raise SpectrumImageError(
                f"{path.name} contains negative values (minimum {block.min():g}); the "
                "Poisson (KL) fit needs counts >= 0. For signed data (background-subtracted, "
                "denoised, difference images) use --method semi-nmf or --beta-loss frobenius"
            )
        block = _bin_block(block, bin_factor)
        blocks.append(scipy.sparse.csr_matrix(block.reshape(-1, block.shape[-1])))
        logger.debug("read rows %d-%d of %s", row, stop, path.name)
    counts = scipy.sparse.vstack(blocks, format="csr")
    counts = _narrowest_integer(counts)
    shape_2d = (usable_rows // bin_factor, (x1 - x0) // bin_factor)

    dense_bytes = counts.shape[0] * counts.shape[1] * counts.dtype.itemsize
    fraction = counts.nnz / max(1, counts.shape[0] * counts.shape[1])
    if fraction > DENSE_NONZERO_FRACTION and dense_bytes <= MAX_DENSE_BYTES:
        counts = counts.toarray()

    image = _image(
        signal,
        counts,
        shape_2d,
        path,
        signal_type,
        offset,
        scale,
        channel_start,
        channel_stop,
        bin_factor,
        (ny, nx, n_channels),
        crop,
    )
    logger.info(
        "loaded %s: %d x %d pixels, %d channels, %.3g counts/pixel, %.2g%% nonzero (%s)",
        path.name,
        shape_2d[0],
        shape_2d[1],
        image.n_channels,
        image.total_counts / max(1, image.n_pixels),
        100 * image.nonzero_fraction,
        "sparse" if image.is_sparse else "dense",
    )
    return image


def _image(
    signal,
    counts,
    shape_2d,
    path,
    signal_type,
    offset,
    scale,
    channel_start,
    channel_stop,
    bin_factor,
    original_shape,
    crop,
) -> SpectrumImage:
    """The SpectrumImage of ``counts`` with the file's axes and metadata."""
    nav_axis = signal.axes_manager.navigation_axes[0]
    unit = str(nav_axis.units).strip()
    known_scale = unit not in ("", "<undefined>", "pix", "px", "pixel", "pixels", "None")
    return SpectrumImage(
        counts=counts,
        shape_2d=shape_2d,
        energy_offset_keV=offset + scale * channel_start,
        energy_scale_keV=scale,
        acquisition=acquisition_from_metadata(signal.metadata, signal_type),
        path=path,
        pixel_size=float(nav_axis.scale) * bin_factor if known_scale else None,
        pixel_unit=unit if known_scale else None,
        signal_type=signal_type,
        processing={
            "original_shape": list(original_shape),
            "crop": None if crop is None else [int(v) for v in crop],
            "bin_factor": bin_factor,
            "channel_window": [channel_start, channel_stop],
        },
    )


def _lazy_image(
    signal,
    data,
    path,
    signal_type,
    pixels,
    channels,
    bin_factor,
    rows_per_block,
    offset,
    scale,
    original_shape,
    crop,
) -> SpectrumImage:
    """The image with its counts left as a dask array: (pixels, channels), blocks of rows."""
    import dask.array as da

    y0, x0, x1, usable_rows = pixels
    channel_start, channel_stop = channels
    if not hasattr(data, "dask"):
        data = da.from_array(data, chunks=(rows_per_block, -1, -1))
    cube = data[y0 : y0 + usable_rows, x0:x1, channel_start:channel_stop]
    if bin_factor > 1:
        cube = cube[:, : (x1 - x0) // bin_factor * bin_factor]
        cube = cube.rechunk({0: rows_per_block, 1: -1, 2: -1})
        kind = np.dtype(cube.dtype).kind
        wide = np.uint64 if kind == "u" else (np.int64 if kind == "i" else cube.dtype)
        cube = da.coarsen(np.sum, cube.astype(wide), {0: bin_factor, 1: bin_factor})
    ny, nx, width = (int(n) for n in cube.shape)
    rows = max(1, rows_per_block // bin_factor)
    counts = cube.rechunk({0: rows, 1: -1, 2: -1}).reshape(ny * nx, width)
    image = _image(
        signal,
        counts,
        (ny, nx),
        path,
        signal_type,
        offset,
        scale,
        channel_start,
        channel_stop,
        bin_factor,
        original_shape,
        crop,
    )
    logger.info(
        "opened %s lazily: %d x %d pixels, %d channels, read in blocks of %d rows",
        path.name,
        ny,
        nx,
        width,
        rows,
    )
    return image
