"""Mechanical code rules (STYLE practices 1 and 14): module budgets, banned module names,
no print() or bare except in the package, no TODO without an issue number."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "pystatefun"
SOURCES = [p for p in PACKAGE.rglob("*.py") if "_generated" not in p.parts]
CODE = [*SOURCES, *(ROOT / "tests").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]
MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 70
BANNED_NAMES = {"utils", "helpers", "misc", "common", "util", "helper"}


def test_sources_exist() -> None:
    assert len(SOURCES) > 10


def test_no_module_is_over_budget() -> None:
    over = []
    for path in SOURCES:
        lines = path.read_text().count("\n")
        text = path.read_text()
        if lines > MODULE_LINES_MAX and "over 400 lines because" not in text:
            over.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not over


def test_no_function_is_over_budget() -> None:
    over = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}"
        for path, node in _nodes(SOURCES)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > FUNCTION_LINES_MAX
    ]
    assert not over


def test_no_grab_bag_module_names() -> None:
    bad = [p for p in PACKAGE.rglob("*") if p.stem.lstrip("_") in BANNED_NAMES]
    assert not bad


def _nodes(paths: list[Path]) -> Iterator[tuple[Path, ast.AST]]:
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            yield path, node


def test_no_print_in_the_package_outside_the_cli() -> None:
    outside_cli = [p for p in SOURCES if "cli" not in p.relative_to(PACKAGE).parts]
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, node in _nodes(outside_cli)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
    ]
    assert not offenders


def test_no_bare_except() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, node in _nodes(CODE)
        if isinstance(node, ast.ExceptHandler) and node.type is None
    ]
    assert not offenders


def test_todos_name_an_issue() -> None:
    pattern = re.compile(r"\b(TODO|FIXME|XXX)\b(?!\(#\d+\))")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in CODE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and path.name != "test_tidy.py"
    ]
    assert not offenders
