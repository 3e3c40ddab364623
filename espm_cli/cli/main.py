"""The ``espm`` click group."""

from __future__ import annotations

import errno
import os
import sys

import click

from .. import __version__
from .batch import batch
from .decompose import decompose
from .info import info
from .options import set_verbosity, verbosity_options
from .select_k import select_k
from .simulate import simulate


class EspmGroup(click.Group):
    """The espm group: every error is one line on stderr; Ctrl-C exits 130.

    click's own handling prints the usage and a hint over three lines before a usage
    error and exits 1 after Ctrl-C; scripts and users get one line and the shell's code.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("espm: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as error:
            click.echo(one_line_error(error), err=True)
            sys.exit(error.exit_code)
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise
            sys.stdout = open(os.devnull, "w")  # the reader went away: nothing more to say
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def one_line_error(error: click.ClickException) -> str:
    """``Error: <message>`` on one line, with where to find help for usage errors."""
    message = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} -h')"
    return f"Error: {message}"


@click.group(
    cls=EspmGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
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
cli.add_command(select_k)
