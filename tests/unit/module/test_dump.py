"""``dump_module``: load, dump, load gives the same module (the round trip every codec must
pass), for examples and for random valid modules."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pystatefun.module import Module, dump_module, load_module

Write = Callable[..., Path]  # fixtures from conftest.py

_UNITS = [("ms", 1), ("s", 1000), ("sec", 1000), ("min", 60_000), ("m", 60_000), ("h", 3_600_000)]
_counter = itertools.count()


@st.composite
def durations(draw: st.DrawFn, low_ms: int = 1, high_ms: int = 10**8) -> tuple[object, int]:
    """A YAML duration (text in some unit, or an int of ms) and its milliseconds."""
    fitting = [(unit, size) for unit, size in _UNITS if -(-low_ms // size) * size <= high_ms]
    unit, size = draw(st.sampled_from(fitting))
    count = draw(st.integers(-(-low_ms // size), high_ms // size))
    if draw(st.booleans()) and unit == "ms":
        return count, count
    space = draw(st.sampled_from(["", " "]))
    return f"{count}{space}{unit}", count * size


@st.composite
def timeouts(draw: st.DrawFn) -> dict[str, object]:
    """A `timeouts` mapping whose phases never exceed its call."""
    call, call_ms = draw(durations(low_ms=10_000))
    spec: dict[str, object] = {"call": call} if draw(st.booleans()) else {}
    limit = call_ms if "call" in spec else 60_000
    for phase in ("connect", "read", "write"):
        if draw(st.booleans()):
            spec[phase] = draw(durations(high_ms=limit))[0]
    return spec


@st.composite
def transports(draw: st.DrawFn) -> dict[str, object] | None:
    kind = draw(st.sampled_from(["none", "async", "async-timeouts", "okhttp"]))
    if kind == "none":
        return None
    if kind == "okhttp":
        return {"type": "io.statefun.transports.v1/okhttp", "timeouts": draw(timeouts())}
    spec: dict[str, object] = {}
    if draw(st.booleans()):
        spec["type"] = "io.statefun.transports.v1/async"
    if kind == "async-timeouts":
        spec["timeouts"] = draw(timeouts())
    else:
        call, call_ms = draw(durations(low_ms=20_000))
        spec["call"] = call
        spec["connect"] = draw(durations(high_ms=call_ms))[0]
    spec["pool_ttl"] = draw(st.sampled_from([0, "0s", "15s", "1 min"]))
    spec["pool_size"] = draw(st.integers(1, 10_000))
    spec["payload_max_bytes"] = draw(st.integers(1, 2**31))
    if draw(st.booleans()):
        spec["trust_cacerts"] = "certs/ca.pem"
    return spec


NAMES = st.from_regex(r"[a-z][a-z0-9.\-]{0,12}", fullmatch=True)


@st.composite
def endpoints(draw: st.DrawFn, functions: str) -> dict[str, Any]:
    host = draw(NAMES)
    url = draw(
        st.sampled_from(
            [
                f"http://{host}:8000/{{function.name}}",
                f"https://{host}/statefun",
                "http+unix:///run/functions.sock/{function.name}",
            ]
        )
    )
    spec: dict[str, Any] = {"functions": functions, "urlPathTemplate": url}
    if draw(st.booleans()):
        spec["maxNumBatchRequests"] = draw(st.integers(-5, 10**6))
    version = draw(st.sampled_from(["v1", "v2"]))
    if version == "v1":
        if draw(st.booleans()):
            spec["timeouts"] = draw(timeouts())
    elif (transport := draw(transports())) is not None:
        spec["transport"] = transport
    return {"kind": f"io.statefun.endpoints.{version}/http", "spec": spec}


@st.composite
def modules(draw: st.DrawFn) -> list[dict[str, Any]]:
    namespaces = draw(st.lists(NAMES, min_size=0, max_size=3, unique=True))
    patterns = [f"{ns}/{draw(st.sampled_from(['*', 'greeter', 'cart']))}" for ns in namespaces]
    documents = [draw(endpoints(pattern)) for pattern in patterns]
    if draw(st.booleans()):
        port = draw(st.integers(0, 65535))
        documents.append({"kind": "io.statefun.playground.v1/ingress", "spec": {"port": port}})
    if draw(st.booleans()) or not documents:
        topics = draw(
            st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4, unique=True)
        )
        spec = {"port": draw(st.integers(0, 65535)), "topics": topics}
        documents.append({"kind": "io.statefun.playground.v1/egress", "spec": spec})
    return draw(st.permutations(documents))


def _load_text(directory: Path, text: str) -> Module:
    path = directory / f"module-{next(_counter)}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_module(path)


@settings(max_examples=150, deadline=None)
@given(modules())
def test_load_dump_load_gives_the_same_module(
    tmp_path_factory: pytest.TempPathFactory, documents: list[dict[str, Any]]
) -> None:
    directory = tmp_path_factory.getbasetemp() / "dump"
    directory.mkdir(exist_ok=True)
    loaded = _load_text(directory, yaml.safe_dump_all(documents, allow_unicode=True))
    assert loaded.warnings == ()
    dumped = dump_module(loaded)
    again = _load_text(directory, dumped)
    assert again == loaded
    assert (again.endpoints, again.ingresses, again.egresses) == (
        loaded.endpoints,
        loaded.ingresses,
        loaded.egresses,
    )
    assert dump_module(again) == dumped
    for endpoint in loaded.endpoints:
        transport = endpoint.transport
        assert 0 < transport.connect_timeout_s <= transport.call_timeout_s


def test_the_dump_spells_out_every_default(write: Write) -> None:
    path = write(
        "kind: io.statefun.endpoints.v1/http\nspec: {functions: a/*, urlPathTemplate: 'http://h/'}\n"
    )
    assert dump_module(load_module(path)) == (
        "kind: io.statefun.endpoints.v2/http\n"
        "spec:\n"
        "  functions: a/*\n"
        "  urlPathTemplate: http://h/\n"
        "  maxNumBatchRequests: 1000\n"
        "  transport:\n"
        "    type: io.statefun.transports.v1/okhttp\n"
        "    timeouts:\n"
        "      call: 1min\n"
        "      connect: 10s\n"
        "      read: 10s\n"
        "      write: 10s\n"
    )
