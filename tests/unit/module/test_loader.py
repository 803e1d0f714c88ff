"""The document stream as a whole: reading the file, finding each document's kind, the checks
across documents, and older formats. Every error names the file, line and field."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pystatefun.errors import ConfigurationError, ModuleError
from pystatefun.module import Location, PlaygroundEgress, PlaygroundIngress, _source, load_module

Write = Callable[..., Path]  # fixtures from conftest.py
LoadError = Callable[[Path], ModuleError]

ENDPOINT = """
kind: io.statefun.endpoints.v2/http
spec:
  functions: {functions}
  urlPathTemplate: http://functions:8000/{{function.name}}
"""


def test_a_stream_of_components_in_file_order(write: Write) -> None:
    path = write(
        """
        # the greeter application
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: example/*
          urlPathTemplate: http://functions:8000/statefun
        ---
        ---
        null
        ---
        kind: io.statefun.endpoints.v1/http
        spec:
          functions: other/*
          urlPathTemplate: http://other:8000/statefun
        ---
        kind: io.statefun.playground.v1/ingress
        spec:
          port: 8090
        ---
        kind: io.statefun.playground.v1/egress
        spec:
          port: 8091
          topics: [greetings]
        """
    )
    module = load_module(str(path))
    assert module.source == path.resolve()
    assert [e.functions for e in module.endpoints] == ["example/*", "other/*"]
    assert [e.location.line for e in module.endpoints] == [2, 10]
    assert module.endpoints[0].location == Location(path.absolute(), 2, 1)
    assert module.ingresses == (
        PlaygroundIngress(port=8090, location=module.ingresses[0].location),
    )
    assert module.ingresses[0].location.line == 15
    assert module.egresses == (
        PlaygroundEgress(port=8091, topics=("greetings",), location=module.egresses[0].location),
    )
    assert module.warnings == ()


def test_a_module_may_declare_only_some_components(write: Write) -> None:
    module = load_module(write("kind: io.statefun.playground.v1/ingress\nspec: {port: 1}\n"))
    assert (module.endpoints, len(module.ingresses), module.egresses) == ((), 1, ())


def test_module_error_is_a_configuration_error_and_a_value_error(
    write: Write, load_error: LoadError
) -> None:
    error = load_error(write("kind: nope\nspec: {}\n"))
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ValueError)
    assert error.code == "PSF-MOD0001"
    assert str(error).startswith(f"{error.file}:1: kind: unknown kind 'nope'")
    assert str(error).endswith("[PSF-MOD0001]")
    assert repr(error).startswith("ModuleError(reason=\"unknown kind 'nope'")


def test_a_missing_file(tmp_path: Path, load_error: LoadError) -> None:
    error = load_error(tmp_path / "absent.yaml")
    assert (error.file, error.line, error.field) == (tmp_path / "absent.yaml", None, None)
    assert str(error) == f"{tmp_path / 'absent.yaml'}: no such file [PSF-MOD0001]"


def test_a_directory(tmp_path: Path, load_error: LoadError) -> None:
    error = load_error(tmp_path)
    assert error.reason.startswith("cannot read the file: Is a directory")


def test_a_file_that_is_not_utf8(tmp_path: Path, load_error: LoadError) -> None:
    path = tmp_path / "module.yaml"
    path.write_bytes(b"kind: \xff\xfe\n")
    assert load_error(path).reason.startswith("not UTF-8 text")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n---\n", "null\n"])
def test_a_file_without_documents(write: Write, load_error: LoadError, text: str) -> None:
    error = load_error(write(text))
    assert (error.line, error.field) == (None, None)
    assert error.reason.startswith("the file has no documents; a module is a stream of YAML")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        # The wording depends on whether PyYAML uses libyaml; the line does not.
        ("kind: [\n", 2, "invalid YAML: "),
        ("kind: a\n spec: b\n", 2, "invalid YAML: mapping values are not allowed"),
        ("ok: 1\n---\nkind: 'open\n", 4, "invalid YAML: found unexpected end of stream"),
        ("kind: !!python/object:os.system x\n", 1, "invalid YAML: could not determine a"),
    ],
)
@pytest.mark.parametrize("loader", [yaml.SafeLoader, yaml.CSafeLoader], ids=["python", "libyaml"])
def test_yaml_syntax_errors_name_the_line(
    write: Write,
    load_error: LoadError,
    monkeypatch: pytest.MonkeyPatch,
    loader: type[yaml.SafeLoader],
    text: str,
    line: int,
    says: str,
) -> None:
    monkeypatch.setattr(_source, "_LOADER", loader)
    error = load_error(write(text))
    assert (error.line, error.field) == (line, None)
    assert error.reason.startswith(says)


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        ("- a\n- b\n", 1, None, "a document must be a mapping: every document is `kind:"),
        ("just text\n", 1, None, "a document must be a mapping"),
        ("spec: {}\n", 1, None, "no `kind`: every document is `kind: <component type>`"),
        ("module: {}\n", 1, None, "no `kind` (a `module:` document without `version:`?)"),
        ("kind: 3\nspec: {}\n", 1, "kind", "unknown kind 3; the known kinds are"),
        (
            "kind: io.statefun.endpoints.v3/http\nspec: {}\n",
            1,
            "kind",
            "unknown kind 'io.statefun.endpoints.v3/http'; the known kinds are "
            "io.statefun.endpoints.v2/http, io.statefun.endpoints.v1/http, "
            "io.statefun.playground.v1/ingress, io.statefun.playground.v1/egress",
        ),
        (
            "kind: io.statefun.playground.v1/ingress\n",
            1,
            None,
            "no `spec` for io.statefun.playground.v1/ingress",
        ),
    ],
)
def test_document_shape_errors(
    write: Write, load_error: LoadError, text: str, line: int, field: str | None, says: str
) -> None:
    error = load_error(write("---\n" + text))
    assert (error.line, error.field) == (line + 1, field)
    assert error.reason.startswith(says)


def test_a_kind_recognised_but_not_supported_yet_says_so(
    write: Write, load_error: LoadError, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pystatefun.module import _loader

    kind = "io.statefun.example.v1/ingress"  # none is today: Kinesis, the last, now runs
    monkeypatch.setattr(_loader, "NOT_YET_SUPPORTED", frozenset({kind}))
    path = write(f"kind: io.statefun.playground.v1/ingress\nspec: {{port: 1}}\n---\nkind: {kind}\n")
    error = load_error(path)
    assert (error.file, error.line, error.field) == (path, 4, "kind")
    assert error.reason.startswith(f"{kind} is a StateFun kind that pystatefun does not support")
    assert "unknown kind" not in error.reason


def test_unknown_top_level_fields_are_warnings(
    write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    path = write("kind: io.statefun.playground.v1/ingress\nspec: {port: 1}\nmeta: {}\n")
    with caplog.at_level(logging.WARNING, logger="pystatefun.module"):
        module = load_module(path)
    expected = f"{path}:3: meta: unknown field, ignored (as StateFun does); a document has only"
    assert module.warnings[0].startswith(expected)
    assert [r.getMessage() for r in caplog.records] == list(module.warnings)


def test_duplicate_keys_are_warnings_and_the_last_wins(write: Write) -> None:
    path = write(
        """
        kind: io.statefun.playground.v1/ingress
        spec:
          port: 1
          port: 2
        """
    )
    module = load_module(path)
    assert module.ingresses[0].port == 2
    assert module.warnings == (
        f"{path}:4: spec.port: duplicate key (also at line 3); the last one wins",
    )


def test_the_same_functions_twice_names_both_lines(write: Write, load_error: LoadError) -> None:
    text = ENDPOINT.format(functions="example/*") + "---" + ENDPOINT.format(functions="example/*")
    error = load_error(write(text))
    assert (error.line, error.field) == (8, "spec.functions")
    assert error.reason.startswith(
        "'example/*' is already served by the endpoint at line 3; declare each functions pattern"
    )


def test_a_namespace_and_a_type_in_it_may_both_be_declared(write: Write) -> None:
    text = ENDPOINT.format(functions="example/*") + "---" + ENDPOINT.format(functions="example/a")
    assert len(load_module(write(text)).endpoints) == 2


@pytest.mark.parametrize(
    ("kind", "spec", "fix"),
    [
        ("io.statefun.playground.v1/ingress", "{port: 1}", "one ingress accepts messages"),
        ("io.statefun.playground.v1/egress", "{port: 1, topics: [a]}", "list every topic in one"),
    ],
)
def test_at_most_one_playground_ingress_and_egress(
    write: Write, load_error: LoadError, kind: str, spec: str, fix: str
) -> None:
    document = f"kind: {kind}\nspec: {spec}\n"
    error = load_error(write(document + "---\n" + document))
    assert (error.line, error.field) == (4, "kind")
    assert error.reason.startswith(f"a second {kind} (the first is at line 1); a module has at")
    assert fix in error.reason


@pytest.mark.parametrize("version", ['"3.0"', "3.0", "'3.0'"])
def test_the_3_0_format_is_rejected_with_the_command_that_converts_it(
    write: Write, load_error: LoadError, version: str
) -> None:
    path = write(f"# legacy\nversion: {version}\nmodule: {{}}\n")
    error = load_error(path)
    assert (error.file, error.line, error.field) == (path, 2, "version")
    assert "legacy StateFun 3.0 module format" in error.reason
    target = path.with_name("module-upgraded.yaml")
    assert error.reason.endswith(f"Convert it: pystatefun module upgrade {path} > {target}")


@pytest.mark.parametrize("version", ['"1.0"', '"2.0"', "2.0", "1"])
def test_2x_formats_are_rejected_saying_the_functions_must_move_first(
    write: Write, load_error: LoadError, version: str
) -> None:
    path = write(f"version: {version}\nmodule: {{}}\n")
    error = load_error(path)
    assert (error.line, error.field) == (1, "version")
    assert "StateFun 2.x module" in error.reason
    assert "2.x protocol, which pystatefun does not support" in error.reason
    assert "Move the functions to a 3.x SDK" in error.reason
    assert f"then convert the endpoints: pystatefun module upgrade {path} >" in error.reason


def test_an_unknown_version(write: Write, load_error: LoadError) -> None:
    error = load_error(write("version: 4.0\n"))
    assert error.reason.startswith("unknown module format version 4.0; pystatefun reads the")


def test_the_upgrade_command_quotes_paths_for_the_shell(
    tmp_path: Path, load_error: LoadError
) -> None:
    path = tmp_path / "my module.yaml"
    path.write_text('version: "3.0"\n')
    error = load_error(path)
    assert f"module upgrade '{path}' > '{tmp_path / 'my module-upgraded.yaml'}'" in error.reason


def test_errors_carry_structured_fields(write: Write) -> None:
    path = write("kind: io.statefun.playground.v1/ingress\nspec:\n  port: -1\n")
    with pytest.raises(ModuleError, match=r"module.yaml:3: spec.port: -1 is out of range"):
        load_module(path)


def test_module_errors_pickle_with_their_location(write: Write, load_error: LoadError) -> None:
    error = load_error(write("kind: io.statefun.playground.v1/ingress\nspec: {port: x}\n"))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.line, copy.field, copy.reason) == (
        error.file,
        error.line,
        error.field,
        error.reason,
    )
    assert str(copy) == str(error)


def test_keys_that_yaml_reads_as_numbers_are_unknown_fields(write: Write) -> None:
    path = write("kind: io.statefun.playground.v1/ingress\nspec: {port: 1, 8090: x, null: y}\n")
    module = load_module(path)
    assert [w.split(": unknown")[0] for w in module.warnings] == [
        f"{path}:2: spec.8090",
        f"{path}:2: spec.null",
    ]
