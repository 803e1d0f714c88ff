"""How the command line reports a pystatefun error: one line saying what happened, with its
code, and the page that says what to do; never a traceback.

Every command runs inside ``CodedGroup.invoke``, so a ``PystatefunError`` raised anywhere below a
command (a damaged data dir, a module with errors, a port in use) reaches the user the same way.
"""

from __future__ import annotations

from typing import IO, Any

import click

from pystatefun.errors import PystatefunError

__all__ = ["CodedError", "CodedGroup", "page_of"]


def page_of(code: str) -> str:
    """The documentation page of an error code."""
    return f"docs/errors/{code}.md"


class CodedError(click.ClickException):
    """A ``PystatefunError`` as click shows errors: ``Error: ... [CODE]`` and its page."""

    def __init__(self, error: PystatefunError) -> None:
        super().__init__(str(error))
        self.code = error.code

    def show(self, file: IO[Any] | None = None) -> None:
        super().show(file)
        click.echo(f"What it means and what to do: {page_of(self.code)}", err=True)


class CodedGroup(click.Group):
    """A command group whose commands' ``PystatefunError``s become ``CodedError``s."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PystatefunError as exc:
            raise CodedError(exc) from exc
