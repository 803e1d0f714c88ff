"""``io.statefun.transports.v1/async``: the default transport, its pool, TLS, and the
``timeouts`` alternative whose call wins."""

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
  urlPathTemplate: https://h/
  transport:
"""


def transport(write: Write, extra: str) -> Transport:
    return load_module(write(HEAD + extra)).endpoints[0].transport


@pytest.mark.parametrize(
    "extra", ["    type: io.statefun.transports.v1/async\n", "    pool_size: 1024\n", "    {}\n"]
)
def test_defaults_with_or_without_the_type(write: Write, extra: str) -> None:
    loaded = transport(write, extra)
    assert loaded.kind == Transport.ASYNC
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (120.0, 20.0)
    assert (loaded.read_timeout_s, loaded.write_timeout_s) == (None, None)
    assert (loaded.pool_ttl_s, loaded.pool_size, loaded.payload_max_bytes) == (15.0, 1024, 2**25)


def test_every_field(write: Write) -> None:
    extra = (
        "    call: 1m\n    connect: 5s\n    pool_ttl: 0\n    pool_size: 8\n"
        "    payload_max_bytes: 1024\n"
    )
    loaded = transport(write, extra)
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (60.0, 5.0)
    assert (loaded.pool_ttl_s, loaded.pool_size, loaded.payload_max_bytes) == (0.0, 8, 1024)


def test_a_short_call_lowers_the_default_connect(write: Write) -> None:
    loaded = transport(write, "    call: 5s\n")
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (5.0, 5.0)


def test_timeouts_take_the_okhttp_defaults_and_win_over_call(write: Write) -> None:
    path = write(HEAD + "    call: 5 min\n    timeouts: {read: 3s}\n")
    module = load_module(path)
    loaded = module.endpoints[0].transport
    assert loaded.kind == Transport.ASYNC
    assert (loaded.call_timeout_s, loaded.connect_timeout_s) == (60.0, 10.0)
    assert (loaded.read_timeout_s, loaded.write_timeout_s) == (3.0, 10.0)
    assert module.warnings == (
        f"{path}:6: spec.transport.call: ignored because `timeouts` is given: timeouts.call wins "
        "(default 1 min), as in StateFun; keep one of them",
    )


def test_tls_files_are_relative_to_the_module_file(write: Write, tmp_path: Path) -> None:
    extra = (
        "    trust_cacerts: certs/ca.pem\n    client_cert: file:/etc/client.crt\n"
        "    client_key: file:///etc/client.key.p8\n    client_key_password: /run/pw.txt\n"
    )
    loaded = transport(write, extra)
    assert loaded.trust_cacerts == tmp_path / "certs" / "ca.pem"
    assert loaded.client_cert == Path("/etc/client.crt")
    assert loaded.client_key == Path("/etc/client.key.p8")
    assert loaded.client_key_password == Path("/run/pw.txt")


@pytest.mark.parametrize(
    ("extra", "line", "field", "says"),
    [
        ("    call: soon\n", 6, "spec.transport.call", "'soon' is not a duration"),
        ("    call: 0\n", 6, "spec.transport.call", "a timeout of 0 is zero"),
        ("    connect: 3 min\n", 6, "spec.transport.connect", "3min is longer than the call"),
        ("    pool_ttl: -1\n", 6, "spec.transport.pool_ttl", "-1 is negative"),
        ("    pool_size: 0\n", 6, "spec.transport.pool_size", "0 is out of range; it must be at"),
        ("    payload_max_bytes: 'x'\n", 6, "spec.transport.payload_max_bytes", "'x' is not an"),
        (
            "    timeouts: {call: 1s, connect: 2s}\n",
            6,
            "spec.transport.timeouts.connect",
            "2s is longer than the call timeout (1s)",
        ),
        (
            "    client_cert: a.crt\n",
            5,
            "spec.transport.client_key",
            "required for mutual TLS: give client_cert and client_key together",
        ),
        (
            "    trust_cacerts: classpath:ca.pem\n",
            6,
            "spec.transport.trust_cacerts",
            "'classpath:ca.pem' is a JVM classpath resource; give a file path instead",
        ),
        ("    trust_cacerts: ''\n", 6, "spec.transport.trust_cacerts", "the empty string is not"),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, extra: str, line: int, field: str, says: str
) -> None:
    error = load_error(write(HEAD + extra))
    assert (error.line, error.field) == (line, field)
    assert error.reason.startswith(says), error.reason
