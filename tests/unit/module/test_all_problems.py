"""A module with several mistakes reports every one, by line, in one error: each invalid field
of each document, each unknown kind, each duplicate; a tab says it is a tab."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pystatefun.cli import cli
from pystatefun.errors import ModuleError, ModuleProblem
from pystatefun.module import _source, load_module

Write = Callable[..., Path]  # fixtures from conftest.py
LoadError = Callable[[Path], ModuleError]

TAB = "a tab character; YAML indents with spaces only — replace the tab with spaces"
LOADERS = pytest.mark.parametrize(
    "loader", [yaml.SafeLoader, yaml.CSafeLoader], ids=["python", "libyaml"]
)


def where(error: ModuleError) -> list[tuple[int | None, str | None]]:
    return [(problem.line, problem.field) for problem in error.problems]


def test_three_field_errors_in_two_documents_and_an_unknown_kind(
    write: Write, load_error: LoadError
) -> None:
    path = write(
        """
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: example/greet*
          urlPathTemplate: ftp://functions:8000/statefun
        ---
        kind: io.statefun.playground.v1/egress
        spec:
          topics: []
          port: 70000
        ---
        kind: io.statefun.endpoint.v2/http
        spec: {}
        """
    )
    error = load_error(path)
    # By line: the egress's topics (line 8) come before its port, though pydantic checks the
    # port first.
    assert where(error) == [(3, "spec.functions"), (4, "spec.urlPathTemplate"),
                            (8, "spec.topics"), (9, "spec.port"), (11, "kind")]  # fmt: skip
    assert (error.file, error.line, error.field) == (path, 3, "spec.functions")
    assert error.reason == error.problems[0].reason
    assert all(problem.file == path for problem in error.problems)
    lines = str(error).splitlines()
    assert lines[0] == f"{path}: 5 problems [PSF-MOD0001]"
    assert lines[1] == (
        f"{path}:3: spec.functions: 'example/greet*' mixes '*' into a name; use 'example/*' for "
        "the whole namespace, or name one type exactly"
    )
    assert lines[3] == f"{path}:8: spec.topics: [] is empty; give at least one"
    assert lines[4] == f"{path}:9: spec.port: 70000 is out of range; it must be at most 65535"
    assert lines[5].startswith(f"{path}:11: kind: unknown kind 'io.statefun.endpoint.v2/http'")
    assert len(lines) == 6


def test_a_duplicate_pattern_and_a_field_error_are_both_reported(
    write: Write, load_error: LoadError
) -> None:
    endpoint = "kind: io.statefun.endpoints.v2/http\nspec: {functions: a/*, urlPathTemplate: %s}\n"
    path = write(
        endpoint % "http://one/"
        + "---\n"
        + endpoint % "http://two/"
        + "---\nkind: io.statefun.playground.v1/ingress\nspec: {port: x}\n"
    )
    error = load_error(path)
    assert where(error) == [(5, "spec.functions"), (8, "spec.port")]
    assert error.problems[0].reason.startswith("'a/*' is already served by the endpoint at line 2")
    assert error.problems[1].reason == "'x' is not an integer"


def test_a_broken_document_takes_no_part_in_the_duplicate_check(
    write: Write, load_error: LoadError
) -> None:
    ingress = "kind: io.statefun.playground.v1/ingress\nspec: {port: %s}\n"
    error = load_error(write(ingress % "x" + "---\n" + ingress % "1" + "---\n" + ingress % "2"))
    assert where(error) == [(2, "spec.port"), (7, "kind")]
    assert error.problems[1].reason.startswith("a second io.statefun.playground.v1/ingress (the "
                                               "first is at line 4)")  # fmt: skip


def test_the_transport_is_checked_even_when_the_rest_of_the_spec_is_not(
    write: Write, load_error: LoadError
) -> None:
    path = write(
        """
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: nope
          urlPathTemplate: http://h/
          transport: {call: never, connect: 5 min}
        """
    )
    assert where(load_error(path)) == [(3, "spec.functions"), (5, "spec.transport.call")]


def test_a_colocated_spec_reports_its_fields_its_placeholders_and_its_transport(
    write: Write, load_error: LoadError
) -> None:
    path = write(
        """
        kind: io.pystatefun.endpoints.v1/colocated
        spec:
          functions: a/*
          command: [serve, "{port}", "{host}"]
          restartBackoff: {initial: 2 s, max: 1 s}
          transport: {trust_cacerts: ca.pem, client_cert: c.crt, client_key: c.key}
        """
    )
    assert where(load_error(path)) == [
        (4, "spec.command[1]"),
        (4, "spec.command[2]"),
        (5, "spec.restartBackoff.max"),
        (6, "spec.transport.trust_cacerts"),
        (6, "spec.transport.client_cert"),
        (6, "spec.transport.client_key"),
    ]


def test_checks_after_validation_report_every_case(write: Write, load_error: LoadError) -> None:
    path = write(
        """
        kind: io.statefun.endpoints.v1/http
        spec:
          functions: a/*
          urlPathTemplate: http://h/
          timeouts: {call: 1 s, connect: 2 s, read: 3 s}
        ---
        kind: io.statefun.playground.v1/egress
        spec:
          port: 1
          topics: [a, b, a, b]
        ---
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: b/*
          urlPathTemplate: http://h/
          transport: {trust_cacerts: "classpath:ca.pem", client_key: key.p8}
        """
    )
    assert where(load_error(path)) == [
        (5, "spec.timeouts.connect"),
        (5, "spec.timeouts.read"),
        (10, "spec.topics[2]"),
        (10, "spec.topics[3]"),
        (16, "spec.transport.trust_cacerts"),
        (16, "spec.transport.client_cert"),
    ]


def test_warnings_of_documents_after_a_bad_one_are_still_given(
    write: Write, load_error: LoadError, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        "kind: io.statefun.playground.v1/ingress\nspec: {port: x}\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec: {port: 1, topics: [a], tpoics: [b]}\n"
    )
    with caplog.at_level(logging.WARNING, logger="pystatefun.module"):
        error = load_error(path)
    assert where(error) == [(2, "spec.port")]
    assert [r.getMessage().split(": unknown")[0] for r in caplog.records] == [
        f"{path}:5: spec.tpoics"
    ]


def test_a_single_problem_reads_as_before(write: Write, load_error: LoadError) -> None:
    path = write("kind: io.statefun.playground.v1/ingress\nspec:\n  port: -1\n")
    error = load_error(path)
    reason = "-1 is out of range; it must be at least 0"
    assert str(error) == f"{path}:3: spec.port: {reason} [PSF-MOD0001]"
    assert error.problems == (ModuleProblem(reason=reason, file=path, line=3, field="spec.port"),)
    assert (error.reason, error.column) == (reason, None)


def test_every_problem_survives_pickling(write: Write, load_error: LoadError) -> None:
    error = load_error(
        write("kind: nope\n---\nkind: io.statefun.playground.v1/ingress\nspec: {}\n")
    )
    copy = pickle.loads(pickle.dumps(error))
    assert len(copy.problems) == 2
    assert copy.problems == error.problems
    assert (copy.file, copy.line, copy.field, copy.reason) == (
        error.file,
        error.line,
        error.field,
        error.reason,
    )
    assert str(copy) == str(error)


def test_a_module_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        ModuleError.of([])


@LOADERS
@pytest.mark.parametrize(
    ("indent", "column"),
    [("\t", 1), ("  \t", 3), ("\t  ", 1)],
    ids=["tab", "spaces-tab", "tab-spaces"],
)
def test_a_tab_in_the_indentation_is_called_a_tab(
    write: Write,
    load_error: LoadError,
    monkeypatch: pytest.MonkeyPatch,
    loader: type[yaml.SafeLoader],
    indent: str,
    column: int,
) -> None:
    monkeypatch.setattr(_source, "_LOADER", loader)
    path = write(f"kind: io.statefun.playground.v1/ingress\nspec:\n{indent}port: 1\n")
    error = load_error(path)
    assert (error.line, error.column, error.field, error.reason) == (3, column, None, TAB)
    assert str(error) == f"{path}:3:{column}: {TAB} [PSF-MOD0001]"


@LOADERS
def test_every_line_indented_with_a_tab_is_reported(
    write: Write,
    load_error: LoadError,
    monkeypatch: pytest.MonkeyPatch,
    loader: type[yaml.SafeLoader],
) -> None:
    monkeypatch.setattr(_source, "_LOADER", loader)
    path = write("kind: io.statefun.playground.v1/egress\nspec:\n\tport: 1\n\ttopics:\n\t\t- a\n")
    error = load_error(path)
    assert [(p.line, p.column, p.reason) for p in error.problems] == [
        (3, 1, TAB),
        (4, 1, TAB),
        (5, 1, TAB),
    ]
    assert str(error).splitlines()[1] == f"{path}:3:1: {TAB}"


def test_a_tab_the_python_parser_refuses_after_a_colon(
    write: Write, load_error: LoadError, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_source, "_LOADER", yaml.SafeLoader)  # libyaml accepts this tab
    error = load_error(write("kind: io.statefun.playground.v1/ingress\nspec: {port:\t1}\n"))
    assert (error.line, error.column) == (2, 13)
    assert error.reason == (
        "a tab character where YAML expects a space (tabs are fine inside quoted strings) — "
        "replace the tab with spaces"
    )


@LOADERS
def test_tabs_inside_quoted_strings_are_fine(
    write: Write, monkeypatch: pytest.MonkeyPatch, loader: type[yaml.SafeLoader]
) -> None:
    monkeypatch.setattr(_source, "_LOADER", loader)
    path = write(
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 1\n  topics: ['a\tb', \"c\td\"]\n"
    )
    assert load_module(path).egresses[0].topics == ("a\tb", "c\td")


@LOADERS
def test_another_syntax_error_still_names_its_line_and_column(
    write: Write,
    load_error: LoadError,
    monkeypatch: pytest.MonkeyPatch,
    loader: type[yaml.SafeLoader],
) -> None:
    monkeypatch.setattr(_source, "_LOADER", loader)
    error = load_error(write("kind: a\nspec: {port: 1\n---\nkind: b\n"))
    assert (error.line, len(error.problems)) == (3, 1)
    assert error.reason.startswith("invalid YAML: ")
    assert error.reason.endswith("(column 1)")


def test_pystatefun_run_prints_every_problem(write: Write, tmp_path: Path) -> None:
    path = write(
        "kind: io.statefun.playground.v1/ingress\nspec: {port: x}\n---\nkind: nope\nspec: {}\n"
    )
    result = CliRunner().invoke(cli, ["run", str(path), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert result.output.splitlines()[:3] == [
        f"Error: {path}: 2 problems [PSF-MOD0001]",
        f"{path}:2: spec.port: 'x' is not an integer",
        f"{path}:4: kind: unknown kind 'nope'; the known kinds are io.statefun.endpoints.v2/http, "
        "io.statefun.endpoints.v1/http, io.statefun.playground.v1/ingress, "
        "io.statefun.playground.v1/egress, io.pystatefun.endpoints.v1/embedded, "
        "io.pystatefun.endpoints.v1/colocated, io.statefun.kafka.v1/ingress, "
        "io.statefun.kafka.v1/egress, io.statefun.kinesis.v1/ingress, "
        "io.statefun.kinesis.v1/egress (see docs/module-yaml/README.md)",
    ]
    assert not (tmp_path / "data").exists()
