"""``pystatefun module validate|upgrade``, run as the installed command: data on stdout,
messages on stderr, exit 1 on error."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
Write = Callable[..., Path]  # fixtures from conftest.py

MODULE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://functions:8000/{function.name}
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: example/special
  urlPathTemplate: http://special:8000/statefun
  maxNumBatchRequests: 0
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 8090
---
kind: io.statefun.playground.v1/egress
spec:
  port: 8091
  topics: [greetings, farewells]
"""


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYSTATEFUN, "module", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_validate_prints_one_line_per_component(write: Write) -> None:
    path = write(MODULE)
    result = run("validate", path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"{path}:1: endpoint example/* -> http://functions:8000/{{function.name}} "
        "(async transport: call 120s, connect 20s; batches of up to 1000)",
        f"{path}:6: endpoint example/special -> http://special:8000/statefun "
        "(okhttp transport: call 60s, connect 10s, read 10s, write 10s; unbounded batches)",
        f"{path}:12: playground ingress on port 8090",
        f"{path}:16: playground egress on port 8091, topics greetings, farewells",
    ]


PAGE = "What it means and what to do: docs/errors/PSF-MOD0001.md"


def test_validate_reports_an_error_on_stderr_and_exits_1(write: Write) -> None:
    path = write(MODULE.replace("port: 8090", "port: 80900"))
    result = run("validate", path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {path}:14: spec.port: 80900 is out of range; it must be at most 65535 "
        f"[PSF-MOD0001]\n{PAGE}\n"
    )


def test_validate_reports_every_problem_and_exits_1(write: Write) -> None:
    path = write(
        MODULE.replace("example/special", "example/spe*cial").replace("port: 8090", "port: -2")
        + "---\nkind: io.statefun.kinesis.v1/ingress\nspec: {id: a/b, streams: []}\n"
    )
    result = run("validate", path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"error: {path}: 3 problems [PSF-MOD0001]",
        f"{path}:8: spec.functions: 'example/spe*cial' mixes '*' into a name; use "
        "'example/*' for the whole namespace, or name one type exactly",
        f"{path}:14: spec.port: -2 is out of range; it must be at least 0",
        f"{path}:22: spec.streams: [] is empty; give at least one",
        PAGE,
    ]


def test_validate_calls_a_tab_a_tab(write: Write) -> None:
    path = write(MODULE.replace("  port: 8091", "\tport: 8091"))
    result = run("validate", path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {path}:18:1: a tab character; YAML indents with spaces only — replace the tab "
        f"with spaces [PSF-MOD0001]\n{PAGE}\n"
    )


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = run("validate", tmp_path / "nope.yaml")
    assert result.returncode == 1
    missing = tmp_path / "nope.yaml"
    assert result.stderr == f"error: {missing}: no such file [PSF-MOD0001]\n{PAGE}\n"


def test_warnings_go_to_stderr_and_fail_only_with_strict(write: Write) -> None:
    path = write(MODULE.replace("  port: 8090", "  port: 8090\n  host: 0.0.0.0"))
    result = run("validate", path)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 4
    assert result.stderr.startswith(f"WARNING {path}:15: spec.host: unknown field, ignored")
    strict = run("validate", "--strict", path)
    assert (strict.returncode, strict.stdout) == (1, result.stdout)
    assert strict.stderr.endswith("error: 1 warning(s) and --strict\n")


def test_validate_rejects_a_legacy_module_with_the_upgrade_command(write: Write) -> None:
    path = write('version: "3.0"\nmodule: {}\n')
    result = run("validate", path)
    assert result.returncode == 1
    assert f"Convert it: pystatefun module upgrade {path} > " in result.stderr


def test_upgrade_writes_yaml_on_stdout_and_notes_on_stderr(write: Write) -> None:
    legacy = write(
        """
        version: "3.0"
        module:
          meta: {type: remote}
          spec:
            endpoints:
              - endpoint:
                  meta: {kind: http}
                  spec: {functions: ex/*, urlPathTemplate: "http://h/{function.name}"}
            egresses:
              - egress:
                  meta: {type: io.statefun.kafka/egress, id: ex/out}
                  spec: {address: kafka:9092}
        """
    )
    result = run("upgrade", legacy)
    assert result.returncode == 0
    assert result.stdout.startswith("# Converted from the StateFun 3.0 module format")
    assert result.stderr == ""  # nothing is left to do by hand
    assert "kind: io.statefun.kafka.v1/egress" in result.stdout
    endpoint_only = result.stdout.split("---\n")[0]
    converted = write(endpoint_only, "converted.yaml")
    validated = run("validate", converted)
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith(f"{converted}:2: endpoint ex/* -> http://h/")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kind: io.statefun.playground.v1/ingress\nspec: {port: 1}\n", "not a legacy module"),
        ('version: "3.0"\nmodule: {meta: {type: x}}\n', "module.meta.type: 'x' is not `remote`"),
    ],
)
def test_upgrade_errors_exit_1(write: Write, text: str, says: str) -> None:
    result = run("upgrade", write(text))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: ")
    assert says in result.stderr


def test_help_is_there() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "upgrade" in result.stdout
    assert "validate" in result.stdout
