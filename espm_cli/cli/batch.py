"""``espm batch STUDY.yaml``: many runs from one file (placeholder until study.py lands)."""

from __future__ import annotations

import click

from .options import verbosity_options


@click.command(short_help="Run many decompositions from a YAML study file.")
@click.argument("study", type=click.Path(exists=True, dir_okay=False))
@verbosity_options
def batch(study):
    """Run the decompositions listed in STUDY (YAML)."""
    raise click.ClickException("not implemented yet")
