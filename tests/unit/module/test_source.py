"""Positions survive YAML's features: flow style, anchors and aliases, merge keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pystatefun.errors import ModuleError
from pystatefun.module import load_module
from pystatefun.module._source import format_path, parse_documents

Write = Callable[..., Path]  # fixtures from conftest.py
LoadError = Callable[[Path], ModuleError]


def test_format_path() -> None:
    assert format_path(("spec", "topics", 1)) == "spec.topics[1]"
    assert format_path(("spec", "transport", "timeouts", "call")) == "spec.transport.timeouts.call"
    assert format_path(()) == ""


def test_positions_are_one_based_lines_and_columns() -> None:
    (document,) = parse_documents("a:\n  b: {c: 1}\n  d:\n    - x\n", Path("m.yaml"))
    assert document.positions[()] == (1, 1)
    assert document.positions[("a", "b", "c")] == (2, 7)
    assert document.positions[("a", "d", 0)] == (4, 7)
    assert document.location(("a", "missing")).line == 1


def test_an_error_in_a_flow_mapping_names_its_line(write: Write, load_error: LoadError) -> None:
    path = write(
        "kind: io.statefun.endpoints.v2/http\nspec: {functions: a/b,\n"
        "  urlPathTemplate: 'http://h/', transport: {call: never}}\n"
    )
    error = load_error(path)
    assert (error.line, error.field) == (3, "spec.transport.call")


def test_anchors_aliases_and_merge_keys_load(write: Write) -> None:
    path = write(
        """
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/*
          urlPathTemplate: http://h/
          transport:
            type: io.statefun.transports.v1/okhttp
            timeouts:
              <<: {read: 2s, connect: 3s}
              connect: 1s
              call: &five 5 min
              write: *five
        """
    )
    module = load_module(path)
    assert module.warnings == ()
    transport = module.endpoints[0].transport
    assert (transport.call_timeout_s, transport.write_timeout_s) == (300.0, 300.0)
    assert (transport.connect_timeout_s, transport.read_timeout_s) == (1.0, 2.0)


def test_an_error_in_a_merged_field_is_reported_at_the_mapping(
    write: Write, load_error: LoadError
) -> None:
    path = write(
        """
        base: &base {call: never}
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/*
          urlPathTemplate: http://h/
          transport:
            <<: *base
        """
    )
    error = load_error(path)
    assert (error.line, error.field) == (6, "spec.transport.call")


def test_a_self_referencing_anchor_does_not_loop(write: Write, load_error: LoadError) -> None:
    error = load_error(write("kind: &k [*k]\nspec: {}\n"))
    assert (error.line, error.field) == (1, "kind")
