#!/usr/bin/env python3
"""Write ``docs/cli.md`` from the ``--help`` of every ``pystatefun`` command.

``--check`` exits 1 (and says what to run) when the committed page is stale; the test suite
runs it, so the reference can never drift from the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click

from pystatefun.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"
HEADER = """# Command line reference

Generated from `--help` by `scripts/generate_cli_docs.py`; do not edit by hand.
Every command writes data to stdout and messages to stderr.
"""


def _help(
    command: click.Command, name: str, parent: click.Context | None
) -> tuple[str, click.Context]:
    context = click.Context(
        command, info_name=name, parent=parent, terminal_width=100, **command.context_settings
    )
    return command.get_help(context), context


def render() -> str:
    """The whole page, deterministic (fixed terminal width, commands sorted, groups expanded)."""
    sections = [HEADER]

    def add(command: click.Command, name: str, parent: click.Context | None) -> None:
        text, context = _help(command, name, parent)
        sections.extend([f"## {context.command_path}\n", f"```text\n{text}\n```\n"])
        if isinstance(command, click.Group):  # list_commands: the top level loads lazily
            for child in sorted(command.list_commands(context)):
                subcommand = command.get_command(context, child)
                assert subcommand is not None, child
                add(subcommand, child, context)

    add(cli, "pystatefun", None)
    return "\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/cli.md is stale")
    args = parser.parse_args()
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print("docs/cli.md is stale: run scripts/generate_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
