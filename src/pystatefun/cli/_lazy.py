"""A command group that imports a command's module only when that command is used.

Importing every command up front made each ``pystatefun`` invocation pay for the runtime, the
HTTP layer and pydantic (about 0.3 s) even to print ``--help`` or read one value. ``LazyGroup``
knows its commands from a static table of names, modules and one-line helps: ``--help`` lists
them from the table, and a command's module is imported when the command runs or shows its own
help. A test keeps the table's helps equal to the commands' docstrings.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from gettext import gettext
from typing import Any, NamedTuple

import click
from click.exceptions import NoSuchCommand

from pystatefun.cli._errors import CodedGroup

__all__ = ["LazyCommand", "LazyGroup"]


class LazyCommand(NamedTuple):
    """Where a command lives (``module``'s ``attribute``) and what ``--help`` says of it."""

    module: str
    attribute: str
    short_help: str


class LazyGroup(CodedGroup):
    """A ``CodedGroup`` whose commands, named in ``lazy``, are imported when first needed."""

    def __init__(
        self, name: str | None = None, *, lazy: Mapping[str, LazyCommand], **attrs: Any
    ) -> None:
        super().__init__(name, **attrs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the command ``name`` of the table."""
        entry = self.lazy[name]
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but "Did you mean" also offers the commands not imported yet."""
        try:
            return super().resolve_command(ctx, args)
        except NoSuchCommand as error:
            raise NoSuchCommand(
                error.command_name, error.message, self.list_commands(ctx), ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of ``--help``, as click writes it, without importing any."""
        shown = [
            name
            for name in self.list_commands(ctx)
            if name in self.lazy or not self.commands[name].hidden
        ]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name in shown)
        with formatter.section(gettext("Commands")):
            formatter.write_dl([(name, self._short_help(name, limit)) for name in shown])

    def _short_help(self, name: str, limit: int) -> str:
        """What click shows for the command, shortened to ``limit`` the way click shortens."""
        if name in self.lazy:  # a stand-in with the table's help: click's own shortening
            return click.Command(name, help=self.lazy[name].short_help).get_short_help_str(limit)
        return self.commands[name].get_short_help_str(limit)
