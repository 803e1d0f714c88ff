"""Mechanical code rules: module budgets, banned module names, no print() or bare except in the
package, no TODO without an issue number, the seams kept (the runtime names no connector and
opens no storage file itself), and no citations of notes outside the repository."""

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


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_runtime_names_no_connector() -> None:
    """Connectors are found through pystatefun.io.registry by kind; the runtime imports the
    connector seam (io.api) and the registry, never a connector."""
    named = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (PACKAGE / "runtime").rglob("*.py")
        for module in _imports(path)
        if module.startswith("pystatefun.io.")
        and module not in {"pystatefun.io.api", "pystatefun.io.registry"}
    ]
    assert not named


def test_storage_files_are_opened_by_the_store_alone() -> None:
    """Only pystatefun.store opens SQLite (DataDir is the one front door to a data dir)."""
    opening = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if "sqlite3.connect" in path.read_text() and "store" not in path.relative_to(PACKAGE).parts
    ]
    assert not opening


def test_no_file_cites_notes_outside_the_repository() -> None:
    """docs/architecture.md is the project's own design document; cite it, or nothing."""
    pattern = re.compile(r"\.\./shared|DESIGN §|DESIGN\.md|STYLE\.md|STYLE practice")
    texts = [
        *CODE,
        *(ROOT / "docs").rglob("*.md"),
        ROOT / "README.md",
        *(ROOT / "bench").rglob("*.py"),
    ]
    citing = [
        str(p.relative_to(ROOT))
        for p in texts
        if pattern.search(p.read_text()) and p != Path(__file__).resolve()
    ]
    assert not citing
