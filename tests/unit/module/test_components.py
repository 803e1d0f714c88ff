"""The loaded components: which endpoint serves a type, and the URL it is called at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.module import HttpEndpoint, Location, Module, Transport, load_module

Write = Callable[..., Path]  # fixtures from conftest.py

HERE = Location(Path("/m.yaml"), 1, 1)
TRANSPORT = Transport(
    kind=Transport.ASYNC,
    call_timeout_s=120.0,
    connect_timeout_s=20.0,
    read_timeout_s=None,
    write_timeout_s=None,
    pool_ttl_s=15.0,
    pool_size=1024,
    payload_max_bytes=2**25,
)


def endpoint(functions: str, url: str = "http://h/{function.name}") -> HttpEndpoint:
    return HttpEndpoint(
        functions=functions, url_path_template=url, transport=TRANSPORT, location=HERE
    )


@pytest.mark.parametrize(
    ("functions", "typename", "matches"),
    [
        ("com.example/*", "com.example/greeter", True),
        ("com.example/*", "com.example.v2/greeter", False),
        ("com.example/*", "com.example/v2/greeter", False),  # namespace com.example/v2
        ("com.example/v2/*", "com.example/v2/greeter", True),
        ("com.example/greeter", "com.example/greeter", True),
        ("com.example/greeter", "com.example/greeter2", False),
        ("com.example/*", "greeter", False),
        ("com.example/*", "com.example/", False),
    ],
)
def test_matches(functions: str, typename: str, matches: bool) -> None:
    assert endpoint(functions).matches(typename) is matches


def test_url_for_replaces_the_placeholder_with_the_name_only() -> None:
    ep = endpoint("com.example/*", "https://fn/{function.name}/x?f={function.name}")
    assert ep.url_for("com.example/greeter") == "https://fn/greeter/x?f=greeter"
    assert ep.url_for("com.example/v2/greeter") == "https://fn/greeter/x?f=greeter"
    assert endpoint("a/*", "http://h/statefun").url_for("a/b") == "http://h/statefun"


def test_a_specific_endpoint_wins_over_its_namespace_in_any_order(write: Write) -> None:
    text = """\
kind: io.statefun.endpoints.v2/http
spec: {{functions: "{first}", urlPathTemplate: "http://first/"}}
---
kind: io.statefun.endpoints.v2/http
spec: {{functions: "{second}", urlPathTemplate: "http://second/"}}
"""
    for first, second in (("ex/*", "ex/special"), ("ex/special", "ex/*")):
        module = load_module(write(text.format(first=first, second=second)))
        special = module.endpoint_for("ex/special")
        other = module.endpoint_for("ex/other")
        assert special is not None
        assert special.functions == "ex/special"
        assert other is not None
        assert other.functions == "ex/*"
        assert module.endpoint_for("elsewhere/special") is None
        assert module.endpoint_for("not-a-typename") is None


def test_hand_built_modules_route_too_and_the_first_duplicate_wins() -> None:
    first, second = endpoint("a/*", "http://1/"), endpoint("a/*", "http://2/")
    module = Module(source=Path("/m.yaml"), endpoints=(first, second))
    assert module.endpoint_for("a/x") is first
    assert Module(source=Path("/m.yaml")).endpoint_for("a/x") is None


def test_equality_ignores_where_things_were_written() -> None:
    elsewhere = Location(Path("/other.yaml"), 9, 3)
    moved = HttpEndpoint(
        functions="a/*",
        url_path_template="http://h/{function.name}",
        transport=TRANSPORT,
        location=elsewhere,
    )
    assert moved == endpoint("a/*")
    assert hash(moved) == hash(endpoint("a/*"))
    assert Module(source=Path("/x"), endpoints=(moved,), warnings=("w",)) == Module(
        source=Path("/y"), endpoints=(endpoint("a/*"),)
    )
    assert str(elsewhere) == "/other.yaml:9"


def test_components_are_frozen() -> None:
    with pytest.raises(AttributeError):
        endpoint("a/*").functions = "b/*"  # type: ignore[misc]
