"""``--http-*`` options: the ``HttpLimits`` of a command's HTTP servers, as one parameter.

The command gets ``http_limits: HttpLimits`` instead of five values; click checks each range,
so a bad value is a usage error naming its option.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from pystatefun.http import HttpLimits

__all__ = ["http_limits_options"]

_DEFAULTS = HttpLimits()
_POSITIVE = click.FloatRange(min=0, min_open=True)
# Option name, HttpLimits field, type, help.
_OPTIONS: tuple[tuple[str, str, click.IntRange | click.FloatRange, str], ...] = (
    (
        "--http-max-head-bytes",
        "max_head_bytes",
        click.IntRange(1),
        "Largest HTTP request head (request line and headers) the ingress and egress accept "
        "(larger: 431, or 414 for the URL alone).",
    ),
    (
        "--http-max-headers",
        "max_headers",
        click.IntRange(1),
        "Most header fields in one HTTP request (more: 431).",
    ),
    (
        "--http-head-timeout",
        "head_timeout_s",
        _POSITIVE,
        "Seconds from a request's first byte to the end of its head (then 408 and close).",
    ),
    (
        "--http-body-timeout",
        "body_timeout_s",
        _POSITIVE,
        "Seconds a request body may go without a byte (then 408 and close).",
    ),
    (
        "--http-max-connections",
        "max_connections",
        click.IntRange(1),
        "HTTP connections open at once on the ingress, and on the egress; one more is "
        "answered 503 and closed.",
    ),
)


def http_limits_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the ``--http-*`` options to ``command``, which receives ``http_limits``."""

    @functools.wraps(command)
    def with_limits(*args: Any, **values: Any) -> Any:
        limits = HttpLimits(**{field: values.pop(field) for _, field, _, _ in _OPTIONS})
        return command(*args, http_limits=limits, **values)

    decorated: Callable[..., Any] = with_limits
    for option, field, kind, help_text in reversed(_OPTIONS):
        decorated = click.option(
            option,
            field,
            type=kind,
            default=getattr(_DEFAULTS, field),
            show_default=True,
            help=help_text,
        )(decorated)
    return decorated
