"""``io.statefun.playground.v1/egress``: a port and a non-empty list of distinct topics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import PlaygroundEgress, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

HEAD = "kind: io.statefun.playground.v1/egress\nspec:\n"


def test_port_and_topics(write: Write) -> None:
    path = write(HEAD + "  port: 8091\n  topics:\n    - greetings\n    - 'null'\n    - ünïcode\n")
    (egress,) = load_module(path).egresses
    assert (egress.port, egress.topics) == (8091, ("greetings", "null", "ünïcode"))
    assert egress.location.line == 1
    assert PlaygroundEgress.ID == "io.statefun.playground/egress"


@pytest.mark.parametrize(
    ("spec", "line", "field", "says"),
    [
        ("  port: 1\n", 2, "spec.topics", "required field is missing"),
        ("  topics: [a]\n", 2, "spec.port", "required field is missing"),
        ("  port: 1\n  topics: []\n", 4, "spec.topics", "[] is empty; give at least one"),
        ("  port: 1\n  topics: greetings\n", 4, "spec.topics", "'greetings' is not a list"),
        ("  port: 1\n  topics:\n    - a\n    - 7\n", 6, "spec.topics[1]", "7 is not a string"),
        ("  port: 1\n  topics:\n    - ''\n", 5, "spec.topics[0]", "the empty string is not"),
        ("  port: 1\n  topics:\n    -\n", 5, "spec.topics[0]", "an empty value is not a string"),
        (
            "  port: 1\n  topics:\n    - a\n    - b\n    - a\n",
            7,
            "spec.topics[2]",
            "topic 'a' is listed twice (also at line 5); list each topic once",
        ),
        ("  port: 99999\n  topics: [a]\n", 3, "spec.port", "99999 is out of range"),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, spec: str, line: int, field: str, says: str
) -> None:
    error = load_error(write(HEAD + spec))
    assert (error.line, error.field) == (line, field)
    assert error.reason.startswith(says), error.reason
