"""The ``espm`` click group."""

from __future__ import annotations

import os

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
    _default_thread_settings()


def _default_thread_settings():
    """Thread defaults for the command line (a library must not set these; the CLI may).

    Runs before numpy is imported (the commands import it lazily). Multi-threaded
    OpenBLAS is slower than one thread on the tall-skinny products of the solver and
    competes with the fast backend's own thread pool on small machines (see
    docs/performance.md); a value the user has set is kept.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


cli.add_command(decompose)
cli.add_command(batch)
cli.add_command(simulate)
cli.add_command(info)
