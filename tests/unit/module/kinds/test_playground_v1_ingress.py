"""``io.statefun.playground.v1/ingress``: a port, 0 meaning "pick a free one"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import PlaygroundIngress, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]


@pytest.mark.parametrize("port", [0, 1, 8090, 65535])
def test_ports(write: Write, port: int) -> None:
    path = write(f"kind: io.statefun.playground.v1/ingress\nspec:\n  port: {port}\n")
    (ingress,) = load_module(path).ingresses
    assert ingress.port == port
    assert (ingress.location.file, ingress.location.line) == (path.absolute(), 1)
    assert PlaygroundIngress.ID == "io.statefun.playground/ingress"


@pytest.mark.parametrize(
    ("spec", "line", "field", "says"),
    [
        ("  port: 65536\n", 3, "spec.port", "65536 is out of range; it must be at most 65535"),
        ("  port: -1\n", 3, "spec.port", "-1 is out of range"),
        ("  port: http\n", 3, "spec.port", "'http' is not an integer"),
        ("  port: true\n", 3, "spec.port", "True is not an integer"),
        ("  host: x\n", 2, "spec.port", "required field is missing"),
        ("  - 8090\n", 2, "spec", "[8090] is not a mapping"),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, spec: str, line: int, field: str, says: str
) -> None:
    error = load_error(write("kind: io.statefun.playground.v1/ingress\nspec:\n" + spec))
    assert (error.line, error.field) == (line, field)
    assert error.reason.startswith(says), error.reason
