"""Module YAML as parsed documents that remember where every field was written.

PyYAML's ``compose`` gives a node tree with marks; we walk it once to record the line and column
of every key (and list item) by its path, then construct plain Python values from the same
nodes. Validation works on the plain values and, when it fails, looks the path up here, so every
error and warning says ``file:line: field:``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pystatefun.errors import ModuleError, ModuleProblem
from pystatefun.module._components import Location

__all__ = ["FieldPath", "SourceDocument", "format_path", "parse_documents", "read_documents"]

FieldPath = tuple[str | int, ...]
_logger = logging.getLogger("pystatefun.module")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TAB_INDENT = "a tab character; YAML indents with spaces only — replace the tab with spaces"
_TAB_ELSEWHERE = (
    "a tab character where YAML expects a space (tabs are fine inside quoted strings) — replace "
    "the tab with spaces"
)
_TAB_PARSES_MAX = 200  # a file indented with tabs throughout: the first ones are enough
# libyaml composes ten times faster when PyYAML was built with it; both keep marks.
_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def format_path(path: FieldPath) -> str:
    """``("spec", "topics", 1)`` as ``spec.topics[1]``, the way errors name a field."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


@final
@dataclass
class SourceDocument:
    """One YAML document of a module file, its value, and the position of each field in it.

    ``warnings`` is shared by the documents of one file: the loader hands it to ``Module``.
    """

    file: Path  # as the user gave it: messages print it
    absolute: Path  # what ``Location`` carries
    value: Any
    positions: dict[FieldPath, tuple[int, int]]
    warnings: list[str] = field(default_factory=list)

    def location(self, path: FieldPath = ()) -> Location:
        """Where ``path`` is written, or where its nearest written parent is (a missing field is
        reported at the mapping that lacks it)."""
        while path not in self.positions:
            path = path[:-1]
        line, column = self.positions[path]
        return Location(self.absolute, line, column)

    def problem(self, path: FieldPath, reason: str) -> ModuleProblem:
        """A ``ModuleProblem`` at ``path``; ``path`` ``()`` means the document itself."""
        line = self.location(path).line
        return ModuleProblem(
            reason=reason, file=self.file, line=line, field=format_path(path) or None
        )

    def error(self, path: FieldPath, reason: str) -> ModuleError:
        """A ``ModuleError`` at ``path``, for a problem that ends the document's checks."""
        return ModuleError.of([self.problem(path, reason)])

    def warn(self, path: FieldPath, reason: str) -> None:
        """Log a warning at ``path`` and keep it for ``Module.warnings``."""
        message = f"{self.file}:{self.location(path).line}: {format_path(path)}: {reason}"
        self.warnings.append(message)
        _logger.warning("%s", message)


def _record(node: Node, path: FieldPath, document: SourceDocument, seen: set[int]) -> None:
    """Record the position of every key and item under ``node``; warn on duplicate keys, which
    YAML forbids but PyYAML (like StateFun's Jackson) resolves silently to the last one.

    A node reached again through an alias is not walked again: that keeps anchors that refer to
    themselves, and alias bombs, from looping; its fields are reported at the alias.
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            document.positions[(*path, index)] = _position(item)
            _record(item, (*path, index), document, seen)
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue  # fields of merged mappings are reported at the mapping's line
            child = (*path, key.value)
            first = document.positions.get(child)
            document.positions[child] = _position(key)
            if first is not None:
                document.warn(child, f"duplicate key (also at line {first[0]}); the last one wins")
            _record(value, child, document, seen)


def _position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _compose(text: str, file: Path) -> list[Node]:
    try:
        return list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as error:
        tabs = _tab_problems(text, error, file)
        if tabs:
            raise ModuleError.of(tabs) from error
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "cannot parse"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise ModuleError(f"invalid YAML: {problem}{column}", file=file, line=line) from error
    except yaml.YAMLError as error:
        raise ModuleError(f"invalid YAML: {error}", file=file) from error


def _tab_problems(text: str, error: yaml.MarkedYAMLError, file: Path) -> list[ModuleProblem]:
    """A problem for each tab that PyYAML stops at ("found character '\\t' that cannot start
    any token" says nothing useful), or none when ``error`` is not at a tab.

    Each tab found is replaced by a space and the text parsed again, so that a file indented
    with tabs gets every such line at once; another error after that is not reported, since
    it may come from the replacement.
    """
    problems: list[ModuleProblem] = []
    current: yaml.MarkedYAMLError | None = error
    for _parse in range(_TAB_PARSES_MAX):
        mark = None if current is None else current.problem_mark
        index = None if mark is None else _tab_index(text, mark)
        if mark is None or index is None:
            break
        if not problems or problems[-1].line != mark.line + 1:  # one problem per line
            problems.append(_tab_problem(text, index, mark, file))
        text = f"{text[:index]} {text[index + 1 :]}"
        current = _first_error(text)
    return problems


def _tab_problem(text: str, index: int, mark: yaml.Mark, file: Path) -> ModuleProblem:
    line_start = max(text.rfind(line_break, 0, index) for line_break in "\n\r") + 1
    indenting = not text[line_start:index].strip(" \t-")
    return ModuleProblem(
        reason=_TAB_INDENT if indenting else _TAB_ELSEWHERE,
        file=file,
        line=mark.line + 1,
        column=mark.column + 1,
    )


def _tab_index(text: str, mark: yaml.Mark) -> int | None:
    """Where the tab at ``mark`` is in ``text``, or ``None`` if there is none there. libyaml's
    ``index`` skips a byte-order mark, so the line and column are tried first."""
    lines = text.splitlines(keepends=True)
    by_line = sum(map(len, lines[: mark.line])) + mark.column
    for index in (by_line, mark.index):
        if 0 <= index < len(text) and text[index] == "\t":
            return index
    return None


def _first_error(text: str) -> yaml.MarkedYAMLError | None:
    try:
        for _node in yaml.compose_all(text, Loader=_LOADER):
            pass
    except yaml.MarkedYAMLError as error:
        return error
    except yaml.YAMLError:
        return None
    return None


def read_documents(file: Path) -> list[SourceDocument]:
    """The non-null documents of ``file``, in order; a ``ModuleError`` if it cannot be read or
    is not YAML."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ModuleError("no such file", file=file) from error
    except UnicodeDecodeError as error:
        raise ModuleError(f"not UTF-8 text ({error.reason})", file=file) from error
    except OSError as error:
        raise ModuleError(f"cannot read the file: {error.strerror}", file=file) from error
    return parse_documents(text, file)


def parse_documents(text: str, file: Path) -> list[SourceDocument]:
    """Like ``read_documents``, for text already read (``file`` names it in messages)."""
    warnings: list[str] = []
    documents = []
    for node in _compose(text, file):
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            continue  # StateFun skips null documents too (FLINK-24110)
        document = SourceDocument(file, file.absolute(), None, {(): _position(node)}, warnings)
        _record(node, (), document, set())
        try:
            document.value = SafeConstructor().construct_document(node)
        except yaml.MarkedYAMLError as error:
            line = error.problem_mark.line + 1 if error.problem_mark else None
            raise ModuleError(f"invalid YAML: {error.problem}", file=file, line=line) from error
        documents.append(document)
    return documents
