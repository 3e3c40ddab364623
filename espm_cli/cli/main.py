"""The ``espm`` click group."""

from __future__ import annotations

import click

from .. import __version__
from .batch import batch
from .decompose import decompose
from .info import info
from .options import set_verbosity, verbosity_options
from .simulate import simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@verbosity_options
@click.version_option(__version__, prog_name="espm")
def cli():
    """Decompose EDX spectrum images into phases (X = G W H, SmoothNMF).

    Logs and progress go to stderr, results to stdout. Exit codes: 0 success,
    1 refused input (bad file, unknown element, failed run), 2 bad usage.
    """
    set_verbosity(0)


cli.add_command(decompose)
cli.add_command(batch)
cli.add_command(simulate)
cli.add_command(info)
