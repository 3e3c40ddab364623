"""The FILE argument of the commands that read a spectrum image."""

from __future__ import annotations

from pathlib import Path

import click

#: Formats stored as a folder (hyperspy's zarr format).
FOLDER_FORMATS = (".zspy",)


class SpectrumImagePath(click.Path):
    """An existing file, or a folder in a format stored as one (``.zspy``)."""

    def __init__(self):
        super().__init__(exists=True, dir_okay=True)

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        path = Path(value)
        if path.is_dir() and path.suffix.lower() not in FOLDER_FORMATS:
            self.fail(
                f"{str(value)!r} is a directory (of the folder formats only "
                f"{', '.join(FOLDER_FORMATS)} is read)",
                param,
                ctx,
            )
        return value


def is_spectrum_image_path(path) -> bool:
    """A file, or a folder of a folder format."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and path.suffix.lower() in FOLDER_FORMATS)
