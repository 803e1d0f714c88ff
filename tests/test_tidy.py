"""Mechanical code rules (STYLE practices 1 and 14): module budgets, banned module names,
no print() or bare except in the package, no TODO without an issue number."""

from __future__ import annotations

import ast
import re
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
    over = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES_MAX:
                    over.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert not over


def test_no_grab_bag_module_names() -> None:
    bad = [p for p in PACKAGE.rglob("*") if p.stem.lstrip("_") in BANNED_NAMES]
    assert not bad


def test_no_print_in_the_package_outside_the_cli() -> None:
    offenders = []
    for path in SOURCES:
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


def test_no_bare_except() -> None:
    offenders = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is None:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
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
