"""Missing entries of X: NaN, a numpy masked array's mask, and the ``mask=`` argument.

Everything missing is sorted into the three kinds the solver treats differently:

- whole channels (a channel mask, or an all-zero row of G): left out of the fit by
  dropping the channel from X and G, so every backend (the fused fast path too) serves it;
- whole pixels (a pixel mask): weight 0 in the loss, the abundances still take part in the
  Laplacian (so they are filled in from their neighbours);
- single entries: left out of the loss entry by entry (cost in proportion to their number
  where the loss factorises).

A ``mask`` is True where an entry is missing and broadcasts against X (n_pixels,
n_channels): shape (n_pixels, n_channels) for entries, (n_channels,) or (1, n_channels)
for channels, (n_pixels, 1) for pixels.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MissingPattern:
    """Where X is missing, by kind.

    Attributes
    ----------
    kept_channels : ndarray of bool of shape (n_channels,)
        Channels that take part in the fit.
    observed_pixels : ndarray of bool of shape (n_pixels,) or None
        None when every pixel is observed.
    missing : scipy.sparse.csr_array of shape (n_pixels, n_kept_channels) or None
        Missing single entries (of the kept channels and observed pixels).
    n_nan : int
        NaN entries found in X.
    """

    kept_channels: np.ndarray
    observed_pixels: object = None
    missing: object = None
    n_nan: int = 0

    @property
    def drops_channels(self):
        """Whether some channels are left out."""
        return not bool(self.kept_channels.all())

    @property
    def needs_weights(self):
        """Whether the loss needs per-pixel or per-entry weights (not only dropped channels)."""
        return self.observed_pixels is not None or self.missing is not None

    def summary(self):
        """A plain dict for logs and result files."""
        return {
            "masked_channels": int((~self.kept_channels).sum()),
            "masked_pixels": 0 if self.observed_pixels is None else int((~self.observed_pixels).sum()),
            "masked_entries": 0 if self.missing is None else int(self.missing.nnz),
            "nan_entries": int(self.n_nan),
        }


def masked_array_mask(X):
    """The mask of a numpy masked array (None for anything else, or no entry masked)."""
    if isinstance(X, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(X)
        return mask if mask.any() else None
    return None


def fill_masked_array(X):
    """A masked array's data with the masked entries set to 0 (X itself otherwise)."""
    if isinstance(X, np.ma.MaskedArray):
        return X.filled(0)
    return X


def _nan_entries(X):
    """(rows, cols) of the NaN entries; raises on infinity."""
    values = X.data if sp.issparse(X) else X
    if not np.issubdtype(values.dtype, np.floating):
        return None
    if np.isinf(values).any():
        raise ValueError("X contains infinity; every count must be finite (NaN marks a missing entry).")
    if sp.issparse(X):
        coo = sp.coo_array(X)
        bad = np.isnan(coo.data)
        return (coo.row[bad], coo.col[bad]) if bad.any() else None
    if not np.isnan(values).any():
        return None
    return np.nonzero(np.isnan(values))


def _user_mask(mask, n_pixels, n_channels):
    """(channel mask, pixel mask, entry mask) of the ``mask=`` argument (None if absent)."""
    if mask is None:
        return None, None, None
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"mask has dtype {mask.dtype}; it must be boolean (True where an entry is missing).")
    if mask.shape in ((n_channels,), (1, n_channels)):
        return mask.reshape(n_channels), None, None
    if mask.shape == (n_pixels, 1):
        return None, mask.reshape(n_pixels), None
    if mask.shape == (n_pixels, n_channels):
        return None, None, mask
    raise ValueError(
        f"mask has shape {mask.shape}; it must be ({n_pixels}, {n_channels}) for "
        f"entries, ({n_channels},) or (1, {n_channels}) for channels, or "
        f"({n_pixels}, 1) for pixels (X is (n_pixels, n_channels))."
    )


def _bool_csr(mask):
    """A boolean mask as CSR (from a dense array about 3x faster than scipy's constructor)."""
    if sp.issparse(mask):
        return sp.csr_array(mask)
    mask = np.asarray(mask, dtype=bool)
    n_rows, n_columns = mask.shape
    flat = np.flatnonzero(mask)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(mask, axis=1), out=indptr[1:])
    index_dtype = np.int32 if n_columns < 2**31 else np.int64
    columns = (flat % n_columns).astype(index_dtype)
    return sp.csr_array((np.ones(flat.size, bool), columns, indptr), shape=mask.shape)


def _energy_range(channels, energies):
    if energies is None:
        return f"channels {channels[0]}-{channels[-1]}"
    return (
        f"channels {channels[0]}-{channels[-1]} "
        f"({energies[channels[0]]:.3f}-{energies[channels[-1]]:.3f} keV)"
    )


def find_missing(
    X, *, mask=None, masked_array=None, empty_model_rows=None, energies=None, left_out_channels=None
):
    """Sort NaN, a masked array's mask, ``mask`` and G's empty rows into a MissingPattern.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_pixels, n_channels)
        After :func:`fill_masked_array`; NaN marks missing entries.
    mask : array-like of bool or None
        See the module docstring.
    masked_array : ndarray of bool or None
        From :func:`masked_array_mask`.
    empty_model_rows : ndarray of bool of shape (n_channels,) or None
        All-zero rows of G: those channels are left out (one log line).
    energies : ndarray or None
        Channel energies in keV, to name the channels left out.
    left_out_channels : ndarray of bool of shape (n_channels,) or None
        Channels left out already (``transform``: those of the fit), without a log line.

    Returns
    -------
    MissingPattern

    Raises
    ------
    ValueError
        A mask of the wrong shape or type, infinity in X, every entry of a pixel or a
        channel masked entry by entry (use a pixel or channel mask), nothing left to fit.
    """
    n_pixels, n_channels = X.shape
    channel_mask, pixel_mask, entries = _user_mask(mask, n_pixels, n_channels)
    nan = _nan_entries(X)
    n_nan = 0 if nan is None else int(nan[0].size)
    if n_nan:
        warnings.warn(
            f"X has {n_nan} NaN entries; they are treated as missing (left out of the fit).",
            UserWarning,
            stacklevel=4,
        )
    entry_parts = [_bool_csr(m) for m in (entries, masked_array) if m is not None]
    if nan is not None:
        entry_parts.append(sp.csr_array((np.ones(n_nan, bool), nan), shape=(n_pixels, n_channels)))
    kept = np.ones(n_channels, bool) if channel_mask is None else ~channel_mask
    if left_out_channels is not None:
        kept = kept & ~left_out_channels
    if empty_model_rows is not None and (empty_model_rows & kept).any():
        rows = np.flatnonzero(empty_model_rows & kept)
        logger.info(
            "G is zero in %d channels (%s): they are left out of the fit.",
            rows.size,
            _energy_range(rows, energies),
        )
        kept = kept & ~empty_model_rows
    if not kept.any():
        raise ValueError("every channel is masked; there is nothing to fit.")
    observed = None if pixel_mask is None else ~pixel_mask
    if observed is not None and not observed.any():
        raise ValueError("every pixel is masked; there is nothing to fit.")
    missing = None
    if entry_parts:
        combined = entry_parts[0]
        for part in entry_parts[1:]:
            combined = combined + part
        if not kept.all():
            combined = combined[:, np.flatnonzero(kept)]
        combined = sp.csr_array(combined)
        if observed is not None:
            combined = sp.csr_array(sp.diags_array(observed.astype(np.int8)) @ combined)
        combined.eliminate_zeros()
        if combined.nnz:
            combined.data[:] = 1
            per_pixel = np.diff(combined.indptr)
            full = np.flatnonzero(per_pixel == kept.sum())
            if full.size:
                raise ValueError(
                    f"pixel {int(full[0])} has every entry masked (by mask=, NaN "
                    "or a masked array); leave whole pixels out with a pixel "
                    "mask, mask of shape (n_pixels, 1)."
                )
            per_channel = np.bincount(combined.indices, minlength=int(kept.sum()))
            n_obs_pixels = n_pixels if observed is None else int(observed.sum())
            full = np.flatnonzero(per_channel == n_obs_pixels)
            if full.size:
                channel = int(np.flatnonzero(kept)[full[0]])
                raise ValueError(
                    f"channel {channel} has every entry masked (by mask=, NaN or "
                    "a masked array); leave whole channels out with a channel "
                    "mask, mask of shape (n_channels,)."
                )
            missing = combined.astype(bool, copy=False)
    return MissingPattern(kept_channels=kept, observed_pixels=observed, missing=missing, n_nan=n_nan)


def fill_nan(X):
    """X with NaN entries set to 0 (X itself when there are none)."""
    if sp.issparse(X):
        if np.issubdtype(X.dtype, np.floating) and np.isnan(X.data).any():
            X = X.copy()
            X.data = np.where(np.isnan(X.data), 0, X.data)
        return X
    X = np.asarray(X)
    if np.issubdtype(X.dtype, np.floating) and np.isnan(X).any():
        return np.where(np.isnan(X), 0, X)
    return X


def model_energies(G):
    """Channel energies (keV) of a physics model G, else None (for log lines)."""
    axis = getattr(G, "energy_axis", None)
    return None if axis is None else getattr(axis, "energies", None)


def keep_channels(X, G, kept, identity=False):
    """X and G restricted to the channels that take part in the fit.

    Returns
    -------
    X, G
    rows : ndarray of int or None
        With ``identity`` (G=None) the columns of G (rows of W) of the channels left out go
        too; ``rows`` are the ones kept (None when all are).
    """
    if kept.all():
        return X, G, None
    columns = np.flatnonzero(kept)
    G = G[columns]
    rows = None
    if identity:
        rows = columns
        G = G[:, rows]
    empty = np.flatnonzero(~G.any(axis=0))
    if empty.size:
        raise ValueError(
            f"G column {int(empty[0])} is zero on every channel left in the fit "
            "(the masked channels hold all of its lines); unmask them or drop "
            "that column."
        )
    return (X[:, columns] if sp.issparse(X) else np.asarray(X)[:, columns]), G, rows


def restrict_to_model_rows(settings, rows):
    """Settings restricted to the rows of W that are fitted (G=None with channels left out)."""
    if rows is None:
        return settings
    settings = dict(settings)
    for name in ("fixed_W", "simplex_rows"):
        if settings[name] is not None:
            settings[name] = settings[name][rows]
    return settings


def expand_rows(n_rows, rows, values):
    """A zero (n_rows, k) array holding ``values`` in ``rows``."""
    full = np.zeros((n_rows, values.shape[1]), values.dtype)
    full[rows] = values
    return full


def mask_for(mask, shape):
    """The part of the fit's ``mask`` that applies to an X of ``shape`` in transform."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    n_pixels, n_channels = shape
    if mask.shape in ((n_channels,), (1, n_channels)) or mask.shape in (
        (n_pixels, 1),
        (n_pixels, n_channels),
    ):
        return mask
    return None
