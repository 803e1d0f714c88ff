"""The ``pystatefun`` command line. Each command is thin over the Python API.

Data goes to stdout, messages to stderr, so commands compose in shell pipelines.
"""

from __future__ import annotations

import click

import pystatefun
from pystatefun.cli._bootstrap import bootstrap
from pystatefun.cli._dead_letters import dead_letters
from pystatefun.cli._errors import CodedGroup
from pystatefun.cli._module import module
from pystatefun.cli._run import run
from pystatefun.cli._savepoint import savepoint
from pystatefun.cli._serve import serve
from pystatefun.cli._sql import sql, state

__all__ = ["cli", "main"]


@click.group(cls=CodedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(pystatefun.__version__, prog_name="pystatefun")
def cli() -> None:
    """pystatefun: an event-driven database for stateful functions."""


cli.add_command(run)
cli.add_command(serve)
cli.add_command(module)
cli.add_command(dead_letters)
cli.add_command(sql)
cli.add_command(state)
cli.add_command(savepoint)
cli.add_command(bootstrap)


def main() -> None:
    """Entry point of the ``pystatefun`` console script."""
    cli()
