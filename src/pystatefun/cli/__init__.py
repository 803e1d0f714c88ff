"""The ``pystatefun`` command line. Each command is thin over the Python API.

Data goes to stdout, messages to stderr, so commands compose in shell pipelines. A command's
module is imported only when that command is used (``LazyGroup``), so that ``--help`` or
``state ls`` does not pay for the runtime, the HTTP layer or pydantic.
"""

from __future__ import annotations

import click

import pystatefun
from pystatefun.cli._lazy import LazyCommand, LazyGroup

__all__ = ["COMMANDS", "cli", "main"]

#: Every command: its module, its attribute there, and its line in ``pystatefun --help`` (the
#: first line of its docstring; tests/unit/cli/test_startup.py keeps them equal).
COMMANDS = {
    "bootstrap": LazyCommand(
        "pystatefun.cli._bootstrap",
        "bootstrap",
        "Load initial state for the function type --type from SOURCE: one address per row.",
    ),
    "cluster": LazyCommand(
        "pystatefun.cli._cluster",
        "cluster",
        "Cluster mode: start a local NATS cluster, see what a cluster's workers serve.",
    ),
    "dead-letters": LazyCommand(
        "pystatefun.cli._dead_letters",
        "dead_letters",
        "Batches that failed for good: list them, re-drive them into their mailboxes, delete them.",
    ),
    "module": LazyCommand(
        "pystatefun.cli._module",
        "module",
        "Check module YAML files, and convert older StateFun module formats.",
    ),
    "run": LazyCommand(
        "pystatefun.cli._run",
        "run",
        "Run MODULE (a StateFun module YAML) embedded in this process.",
    ),
    "savepoint": LazyCommand(
        "pystatefun.cli._savepoint",
        "savepoint",
        "Savepoints: back up a data dir, move it to another machine, restore it.",
    ),
    "serve": LazyCommand(
        "pystatefun.cli._serve",
        "serve",
        "Serve the StatefulFunctions object TARGET (FILE.py:NAME or MODULE:NAME) over HTTP.",
    ),
    "sql": LazyCommand(
        "pystatefun.cli._sql",
        "sql",
        "Run the read-only SQL QUERY over a consistent snapshot of the state.",
    ),
    "state": LazyCommand(
        "pystatefun.cli._sql",
        "state",
        "Read the state of addresses, live and read-only.",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(pystatefun.__version__, prog_name="pystatefun")
def cli() -> None:
    """pystatefun: an event-driven database for stateful functions."""


def main() -> None:
    """Entry point of the ``pystatefun`` console script."""
    cli()
