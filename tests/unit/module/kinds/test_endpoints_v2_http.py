"""``io.statefun.endpoints.v2/http``: fields, defaults, and each error at its line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import HttpEndpoint, Transport, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

HEAD = "kind: io.statefun.endpoints.v2/http\nspec:\n"


def endpoint(write: Write, spec: str) -> HttpEndpoint:
    return load_module(write(HEAD + spec)).endpoints[0]


def test_defaults_are_the_async_transport_of_statefun_3_2(write: Write) -> None:
    loaded = endpoint(
        write, "  functions: com.example/*\n  urlPathTemplate: http://fn:8000/{function.name}\n"
    )
    assert loaded.functions == "com.example/*"
    assert loaded.url_path_template == "http://fn:8000/{function.name}"
    assert loaded.max_num_batch_requests == 1000
    assert loaded.transport == Transport(
        kind="io.statefun.transports.v1/async",
        call_timeout_s=120.0,
        connect_timeout_s=20.0,
        read_timeout_s=None,
        write_timeout_s=None,
        pool_ttl_s=15.0,
        pool_size=1024,
        payload_max_bytes=33_554_432,
    )
    assert loaded.location.line == 1


def test_overrides(write: Write) -> None:
    loaded = endpoint(
        write,
        """\
  functions: com.example/greeter
  urlPathTemplate: https://fn.example.com:8443/statefun?x=1
  maxNumBatchRequests: 10
  transport:
    type: io.statefun.transports.v1/okhttp
    timeouts: {call: 30s, connect: 1s, read: 2s, write: 3s}
""",
    )
    assert (loaded.functions, loaded.max_num_batch_requests) == ("com.example/greeter", 10)
    assert loaded.url_path_template == "https://fn.example.com:8443/statefun?x=1"
    assert loaded.transport.kind == Transport.OKHTTP
    assert loaded.transport.call_timeout_s == 30.0
    assert (loaded.transport.connect_timeout_s, loaded.transport.read_timeout_s) == (1.0, 2.0)
    assert loaded.transport.write_timeout_s == 3.0


@pytest.mark.parametrize("batch", [0, -1])
def test_a_batch_bound_of_zero_or_less_is_kept_meaning_unbounded(write: Write, batch: int) -> None:
    spec = f"  functions: a/b\n  urlPathTemplate: http://h/\n  maxNumBatchRequests: {batch}\n"
    assert endpoint(write, spec).max_num_batch_requests == batch


@pytest.mark.parametrize(
    "url",
    [
        "http://h/",
        "HTTP://h:80/{function.name}",
        "https://[::1]:8443/a/{function.name}/b?q=1#f",
        "http+unix:///run/functions.sock/statefun/{function.name}",
        "https+unix:///tmp/x/fn.sock",
    ],
)
def test_url_schemes(write: Write, url: str) -> None:
    spec = f"  functions: a/b\n  urlPathTemplate: '{url}'\n"
    assert endpoint(write, spec).url_path_template == url


@pytest.mark.parametrize(
    ("spec", "line", "field", "says"),
    [
        ("  urlPathTemplate: http://h/\n", 2, "spec.functions", "required field is missing"),
        ("  functions: a/b\n", 2, "spec.urlPathTemplate", "required field is missing"),
        ("  functions: a/b\n  urlPathTemplate: 7\n", 4, "spec.urlPathTemplate", "7 is not a str"),
        ("  functions: 7\n  urlPathTemplate: http://h/\n", 3, "spec.functions", "7 is not a str"),
        (
            "  functions: com.*/x\n  urlPathTemplate: http://h/\n",
            3,
            "spec.functions",
            "'com.*/x' has '*' in its namespace; only '<namespace>/*'",
        ),
        (
            "  functions: com/greet*\n  urlPathTemplate: http://h/\n",
            3,
            "spec.functions",
            "'com/greet*' mixes '*' into a name; use 'com/*' for the whole namespace",
        ),
        (
            "  functions: greeter\n  urlPathTemplate: http://h/\n",
            3,
            "spec.functions",
            "'greeter' is not '<namespace>/<name>' or '<namespace>/*'",
        ),
        ("  functions: /x\n  urlPathTemplate: http://h/\n", 3, "spec.functions", "'/x' is not"),
        ("  functions: x/\n  urlPathTemplate: http://h/\n", 3, "spec.functions", "'x/' is not"),
        (
            "  functions: a/b\n  urlPathTemplate: ftp://h/\n",
            4,
            "spec.urlPathTemplate",
            "'ftp://h/' is not an http, https, http+unix or https+unix URL; e.g.",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: functions:8000/x\n",
            4,
            "spec.urlPathTemplate",
            "'functions:8000/x' is not an http, https",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http:///x\n",
            4,
            "spec.urlPathTemplate",
            "'http:///x' has no",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h:99999/\n",
            4,
            "spec.urlPathTemplate",
            "'http://h:99999/' has an invalid port",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http+unix:///run/fn/statefun\n",
            4,
            "spec.urlPathTemplate",
            "'http+unix:///run/fn/statefun' names no socket file: in a http+unix URL the first "
            "path segment ending in '.sock'",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: 'http://h/{function.namespace}'\n",
            4,
            "spec.urlPathTemplate",
            "'http://h/{function.namespace}' has a placeholder other than {function.name}",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h/\n  maxNumBatchRequests: many\n",
            5,
            "spec.maxNumBatchRequests",
            "'many' is not an integer",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h/\n  maxNumBatchRequests: yes\n",
            5,
            "spec.maxNumBatchRequests",
            "True is not an integer",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h/\n  maxNumBatchRequests: 1.5\n",
            5,
            "spec.maxNumBatchRequests",
            "1.5 is not an integer",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h/\n  transport: fast\n",
            5,
            "spec.transport",
            "'fast' is not a mapping",
        ),
        (
            "  functions: a/b\n  urlPathTemplate: http://h/\n  transport:\n    type: my/grpc\n",
            6,
            "spec.transport.type",
            "unknown transport type 'my/grpc'; pystatefun has io.statefun.transports.v1/async, "
            "io.statefun.transports.v1/okhttp (custom StateFun transports are JVM extensions",
        ),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, spec: str, line: int, field: str, says: str
) -> None:
    path = write(HEAD + spec)
    error = load_error(path)
    assert (error.file, error.line, error.field) == (path, line, field)
    assert error.reason.startswith(says), error.reason


def test_a_spec_that_is_not_a_mapping(write: Write, load_error: LoadError) -> None:
    error = load_error(write("kind: io.statefun.endpoints.v2/http\nspec:\n"))
    assert (error.line, error.field, error.reason) == (
        2,
        "spec",
        "an empty value is not a mapping; write `key: value` fields here",
    )


def test_unknown_fields_are_warnings_with_a_suggestion(write: Write) -> None:
    path = write(HEAD + "  functions: a/b\n  urlPathTemplate: http://h/\n  trasnport: {}\n")
    module = load_module(path)
    assert module.endpoints[0].transport.kind == Transport.ASYNC
    assert module.warnings == (
        f"{path}:5: spec.trasnport: unknown field, ignored (as StateFun does); did you mean "
        "'transport'? known fields: functions, urlPathTemplate, maxNumBatchRequests, transport",
    )
