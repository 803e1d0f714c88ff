"""``--log-level`` and ``--log-format``: how a long-running command logs (to stderr), set up
before the command runs (``pystatefun.log_format``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

__all__ = ["log_options"]


def log_options(text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options to a command; its text lines follow the logging pattern ``text``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_logging(*args: Any, **values: Any) -> Any:
            from pystatefun.log_format import configure_logging  # noqa: PLC0415 - fast --help

            configure_logging(values.pop("log_level"), values.pop("log_format"), text)
            return command(*args, **values)

        level = click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING",
                             "ERROR"]), default="INFO", show_default=True)  # fmt: skip
        form = click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                            show_default=True, help="json: one JSON object per line, with the "
                            "address as a field of every line about one.")  # fmt: skip
        return level(form(with_logging))

    return decorate
