"""Checks of a run's inputs made as early as they can be: before the counts are read,
before the fit. Each raises ValueError with one sentence naming the input and the fix.

No click here (used by the run workflow in batch workers too).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def describe_grid(ny: int, nx: int) -> str:
    """Pixel grid in words, the same in every message: ``64 x 32 pixels`` (rows x columns),
    ``a line scan of 64 pixels`` for one row."""
    if ny == 1:
        return f"a line scan of {nx} pixels"
    return f"{ny} x {nx} pixels"


def header_checker(config):
    """The cheap checks on the file's metadata, for ``load_spectrum_image(check_header=...)``.

    Elements and beam energy are needed for a physics fit; when neither the options
    nor the metadata give them, the run is refused before the (possibly long) read.
    """

    def check(acquisition, shape):
        name = Path(config["file"]).name
        if config["no_physics"]:
            return
        if not (config["elements"] or acquisition.elements):
            raise ValueError(
                f"{name} lists no elements in its metadata; name them with "
                "--elements (e.g. --elements Fe,Pt,O) or use --no-physics"
            )
        if config["beam_energy"] is None and acquisition.beam_energy_keV is None:
            raise ValueError(f"{name} has no beam energy in its metadata; give --beam-energy (keV)")

    return check


def check_truth_file(path):
    """Read a ``--truth`` file, refusing one that is not a result file (before the fit)."""
    from ..io import read_result

    name = Path(path).name
    try:
        return read_result(path)
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, OSError) and "signature" in reason.lower():
            reason = "not an HDF5 file"
        raise ValueError(
            f"--truth {name} is not an espm result or truth file ({reason}); "
            "give the <stem>_truth.h5 written by espm simulate"
        ) from None


def check_image(image, config, truth) -> None:
    """Checks once the counts are read, before the model and the fit.

    ``truth`` (a DecompositionResult or None) must describe this image: the same pixel
    grid as the file and an energy axis of the same channel width that overlaps it.
    """
    name = image.path.name
    if truth is not None:
        truth_name = Path(config["truth"]).name
        ny, nx = image.processing.get("original_shape", [*image.shape_2d, 0])[:2]
        truth_shape = tuple(np.shape(truth.maps)[1:])
        if truth_shape != (ny, nx):
            raise ValueError(
                f"--truth {truth_name} is for an image of {describe_grid(*truth_shape)}, "
                f"but {name} has {describe_grid(ny, nx)}: it is the truth of another file"
            )
        energy = np.asarray(truth.energy, dtype=float)
        width = float(np.median(np.diff(energy))) if energy.size > 1 else 0.0
        if (
            energy.size < 2
            or abs(width - image.energy_scale_keV) > 1e-6 * max(1.0, width)
            or energy[0] > image.energy[-1]
            or energy[-1] < image.energy[0]
        ):
            raise ValueError(
                f"--truth {truth_name} has another energy axis ({energy.size} channels of "
                f"{1000 * width:.4g} eV) than {name} ({image.n_channels} of "
                f"{1000 * image.energy_scale_keV:.4g} eV): it is the truth of another file"
            )
    values = image.counts.data if image.is_sparse else image.counts
    # (not the total: signed data may sum to 0; a lazy image has its totals from one pass)
    if (image.total_counts == 0) if image.is_lazy else not np.any(values):
        raise ValueError(f"{name} holds no counts in the selected pixels and channels")
    if values.dtype.kind == "f" and not image.is_lazy:  # lazy: the solver warns as it reads
        fractional = values[values != np.round(values)]
        if fractional.size:
            logger.warning(
                "%s holds non-integer values (e.g. %.4g), not raw X-ray counts: the "
                "Poisson (KL) fit assumes counts, so the phases may be off; decompose "
                "the file as recorded, before any normalisation",
                name,
                float(fractional.flat[0]),
            )
