"""Reading spectrum images and writing results.

Heavy libraries (hyperspy, h5py) are imported inside the functions that need them.
"""

from .acquisition import REQUIRED_PARAMETERS, AcquisitionParameters, acquisition_from_metadata
from .atomic import atomic_path, check_writable_dir, write_text_atomic
from .result_file import (
    SCHEMA_VERSION,
    DecompositionResult,
    file_sha256,
    read_config_hash,
    read_result,
    read_root_attributes,
    write_result,
)
from .spectrum_image import ProcessingOptionError, SpectrumImage, SpectrumImageError, load_spectrum_image

__all__ = [
    "REQUIRED_PARAMETERS",
    "SCHEMA_VERSION",
    "AcquisitionParameters",
    "DecompositionResult",
    "ProcessingOptionError",
    "SpectrumImage",
    "SpectrumImageError",
    "acquisition_from_metadata",
    "atomic_path",
    "check_writable_dir",
    "file_sha256",
    "load_spectrum_image",
    "read_config_hash",
    "read_result",
    "read_root_attributes",
    "write_result",
    "write_text_atomic",
]
