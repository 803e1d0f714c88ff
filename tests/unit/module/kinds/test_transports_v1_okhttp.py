"""``io.statefun.transports.v1/okhttp`` in a v2 endpoint: ``timeouts`` and their rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import Transport, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

HEAD = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: a/*
  urlPathTemplate: http://h/
  transport:
    type: io.statefun.transports.v1/okhttp
"""


def transport(write: Write, extra: str = "") -> Transport:
    return load_module(write(HEAD + extra)).endpoints[0].transport


def test_defaults(write: Write) -> None:
    loaded = transport(write)
    assert loaded.kind == Transport.OKHTTP
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (60.0, 10.0)
    assert (loaded.read_timeout_s, loaded.write_timeout_s) == (10.0, 10.0)
    assert (loaded.pool_size, loaded.pool_ttl_s, loaded.payload_max_bytes) == (1024, 60.0, 2**25)
    assert loaded.trust_cacerts is None


def test_every_timeout(write: Write) -> None:
    loaded = transport(write, "    timeouts: {call: 5 min, connect: 500, read: 2s, write: 1 min}\n")
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (300.0, 0.5)
    assert (loaded.read_timeout_s, loaded.write_timeout_s) == (2.0, 60.0)


def test_a_short_call_lowers_the_default_phases(write: Write) -> None:
    loaded = transport(write, "    timeouts: {call: 3s}\n")
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (3.0, 3.0)
    assert (loaded.read_timeout_s, loaded.write_timeout_s) == (3.0, 3.0)


@pytest.mark.parametrize(
    ("extra", "line", "field", "says"),
    [
        (
            "    timeouts: {call: 2 fortnights}\n",
            7,
            "spec.transport.timeouts.call",
            "'2 fortnights' is not a duration; use a number with a unit like '2 min', '30s', "
            "'500ms'",
        ),
        (
            "    timeouts:\n      call: 0 s\n",
            8,
            "spec.transport.timeouts.call",
            "a timeout of '0 s' is zero; it must be at least 1 ms",
        ),
        (
            "    timeouts:\n      call: 10s\n      write: 11s\n",
            9,
            "spec.transport.timeouts.write",
            "11s is longer than the call timeout (10s)",
        ),
        ("    timeouts: 5s\n", 7, "spec.transport.timeouts", "'5s' is not a mapping"),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, extra: str, line: int, field: str, says: str
) -> None:
    error = load_error(write(HEAD + extra))
    assert (error.line, error.field) == (line, field)
    assert error.reason.startswith(says), error.reason


def test_async_fields_are_unknown_here(write: Write) -> None:
    path = write(HEAD + "    call: 5s\n    pool_size: 3\n")
    module = load_module(path)
    assert module.endpoints[0].transport.call_timeout_s == 60.0
    assert [w.split(": unknown")[0] for w in module.warnings] == [
        f"{path}:7: spec.transport.call",
        f"{path}:8: spec.transport.pool_size",
    ]
