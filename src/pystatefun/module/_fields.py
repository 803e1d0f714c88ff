"""Field types that several kinds share, as pydantic annotated types with our messages.

Each validator raises ``ValueError`` with a sentence that quotes the value and shows a correct
one; ``_validation`` turns it into a ``ModuleError`` at the field's line.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from pystatefun.module._durations import parse_duration_ms
from pystatefun.types import split_typename

__all__ = [
    "DurationMs",
    "FunctionsPattern",
    "Integer",
    "Port",
    "PositiveInt",
    "TimeoutMs",
    "Topic",
    "UrlPathTemplate",
]

_URL_SCHEMES = ("http", "https", "http+unix", "https+unix")
_URL_EXAMPLES = "e.g. 'http://functions:8000/statefun' or 'http+unix:///run/fn.sock/statefun'"


def _not_bool(value: object) -> object:
    # YAML reads `yes`/`true` as booleans, and Python's bool is an int: refuse it explicitly.
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _timeout_ms(value: object) -> int:
    millis = parse_duration_ms(value)
    if millis == 0:
        raise ValueError(f"a timeout of {value!r} is zero; it must be at least 1 ms")
    return millis


def _functions(value: str) -> str:
    parts = split_typename(value)
    if parts is None:
        raise ValueError(
            f"{value!r} is not '<namespace>/<name>' or '<namespace>/*'; "
            "e.g. 'com.example/greeter' (one type) or 'com.example/*' (every type in com.example)"
        )
    namespace, name = parts
    if "*" in namespace:
        raise ValueError(
            f"{value!r} has '*' in its namespace; only '<namespace>/*' (every type of one "
            "namespace) and '<namespace>/<name>' (one type) are supported"
        )
    if "*" in name and name != "*":
        raise ValueError(
            f"{value!r} mixes '*' into a name; use '{namespace}/*' for the whole namespace, "
            "or name one type exactly"
        )
    return value


def _url_path_template(value: str) -> str:
    probe = value.replace("{function.name}", "name")
    if "{" in probe or "}" in probe:
        raise ValueError(
            f"{value!r} has a placeholder other than {{function.name}}, the only one StateFun "
            "replaces (with the function's name, not its namespace)"
        )
    parts = urlsplit(probe)
    scheme = parts.scheme.lower()
    if scheme not in _URL_SCHEMES:
        raise ValueError(f"{value!r} is not an http, https, http+unix or https+unix URL; "
                         f"{_URL_EXAMPLES}")  # fmt: skip
    if scheme.endswith("+unix"):
        if not any(segment.endswith(".sock") for segment in parts.path.split("/")):
            raise ValueError(
                f"{value!r} names no socket file: in a {scheme} URL the first path segment "
                "ending in '.sock' is the socket, e.g. 'http+unix:///run/fn.sock/statefun'"
            )
        return value
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host; {_URL_EXAMPLES}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port; {_URL_EXAMPLES}") from None
    return value


Integer = Annotated[int, BeforeValidator(_not_bool)]
PositiveInt = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]
Port = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=65535)]
DurationMs = Annotated[int, BeforeValidator(parse_duration_ms)]
TimeoutMs = Annotated[int, BeforeValidator(_timeout_ms)]
FunctionsPattern = Annotated[str, Field(strict=True), AfterValidator(_functions)]
UrlPathTemplate = Annotated[str, Field(strict=True), AfterValidator(_url_path_template)]
Topic = Annotated[str, StringConstraints(strict=True, min_length=1)]
