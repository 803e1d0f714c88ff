"""``io.statefun.endpoints.v1/http``: always OkHttp, ``timeouts`` at spec level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pystatefun.errors import ModuleError
from pystatefun.module import Transport, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

HEAD = (
    "kind: io.statefun.endpoints.v1/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/\n"
)


def test_defaults_are_okhttp(write: Write) -> None:
    loaded = load_module(write(HEAD)).endpoints[0]
    assert (loaded.functions, loaded.max_num_batch_requests) == ("a/*", 1000)
    assert loaded.transport == Transport(
        kind="io.statefun.transports.v1/okhttp",
        call_timeout_s=60.0,
        connect_timeout_s=10.0,
        read_timeout_s=10.0,
        write_timeout_s=10.0,
        pool_ttl_s=60.0,
        pool_size=1024,
        payload_max_bytes=33_554_432,
    )


def test_overrides(write: Write) -> None:
    text = HEAD + "  maxNumBatchRequests: 7\n  timeouts:\n    call: 2 min\n    write: 1 min\n"
    loaded = load_module(write(text)).endpoints[0]
    assert loaded.max_num_batch_requests == 7
    transport = loaded.transport
    assert (transport.call_timeout_s, transport.connect_timeout_s) == (120.0, 10.0)
    assert (transport.read_timeout_s, transport.write_timeout_s) == (10.0, 60.0)


def test_errors_point_into_spec_timeouts(write: Write, load_error: LoadError) -> None:
    error = load_error(write(HEAD + "  timeouts:\n    call: 1s\n    connect: 2s\n"))
    assert (error.line, error.field) == (7, "spec.timeouts.connect")
    assert error.reason == (
        "2s is longer than the call timeout (1s): `connect` bounds one attempt inside the call, "
        "so make it at most 1s or raise `call`"
    )


def test_a_transport_field_is_not_v1_and_warns(write: Write) -> None:
    path = write(HEAD + "  transport: {type: io.statefun.transports.v1/async}\n")
    module = load_module(path)
    assert module.endpoints[0].transport.kind == Transport.OKHTTP
    assert module.warnings[0].startswith(f"{path}:5: spec.transport: unknown field, ignored")
