"""Pydantic validation of one spec, with StateFun's leniency and our error messages.

Specs are validated by pydantic models (one per kind, in ``kinds/``). This module runs them,
turns every validation error into a problem at the field's line, and logs each unknown field
as a warning: StateFun ignores unknown fields, so a module written for it must still load here,
but a typo (``trasnport:``) should not go unnoticed. ``Problems`` gathers the problems of
several checks, so that a user fixes a module in one round rather than one error at a time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar, final

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from pystatefun.errors import ModuleError, ModuleProblem
from pystatefun.module._source import FieldPath, SourceDocument

__all__ = ["SPEC_CONFIG", "Problems", "validate"]

# defer_build: a model builds its validator on first use, so start-up pays only for the
# kinds a module uses (building every one took most of `pystatefun run`'s start-up).
SPEC_CONFIG = ConfigDict(extra="allow", frozen=True, defer_build=True)
_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")
_REPR_MAX = 60


@final
class Problems:
    """The problems found so far in one module file; checks record theirs here and go on."""

    def __init__(self) -> None:
        self.found: list[ModuleProblem] = []

    def add(self, problem: ModuleProblem) -> None:
        """Record ``problem`` and go on checking."""
        self.found.append(problem)

    def attempt(self, check: Callable[[], _T]) -> _T | None:
        """What ``check()`` returns, or ``None`` once the problems of the ``ModuleError`` it
        raised are recorded."""
        try:
            return check()
        except ModuleError as error:
            self.found.extend(error.problems)
            return None

    def error(self) -> ModuleError:
        """One ``ModuleError`` with every problem found (there must be one), by line."""
        return ModuleError.of(sorted(self.found, key=lambda problem: problem.line or 0))

    def raise_any(self) -> None:
        """Raise ``error()`` if a problem was found."""
        if self.found:
            raise self.error()


def validate(document: SourceDocument, model: type[_M], raw: object, path: FieldPath) -> _M:
    """``raw`` (the value at ``path``) validated as ``model``; raises a ``ModuleError`` with a
    problem per invalid field, warns about every unknown one."""
    try:
        result = model.model_validate(_string_keys(raw))
    except ValidationError as error:
        problems: dict[FieldPath, ModuleProblem] = {}
        for details in error.errors(include_url=False):
            where = (*path, *(part for part in details["loc"] if isinstance(part, str | int)))
            # One problem per field: a union's members would each say why they do not fit.
            problems.setdefault(where, document.problem(where, _describe(details)))
        raise ModuleError.of(list(problems.values())) from None
    _warn_unknown_fields(document, result, path)
    return result


def _string_keys(value: object) -> object:
    """``value`` with every mapping key a string, as YAML wrote it (``1: x`` has key ``"1"``):
    StateFun's Jackson reads keys as text, so an odd key is an unknown field, not an error."""
    if isinstance(value, dict):
        return {_yaml_text(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


def _yaml_text(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _shown(value: object) -> str:
    if value is None:
        return "an empty value"
    text = repr(value)
    return text if len(text) <= _REPR_MAX else f"{text[: _REPR_MAX - 5]}...{text[-1]}"


_MESSAGES = {
    "missing": "required field is missing",
    "int_type": "{value} is not an integer",
    "int_parsing": "{value} is not an integer",
    "int_from_float": "{value} is not an integer",
    "string_type": "{value} is not a string; write text (quote it if YAML reads a number)",
    "model_type": "{value} is not a mapping; write `key: value` fields here",
    "model_attributes_type": "{value} is not a mapping; write `key: value` fields here",
    "dict_type": "{value} is not a mapping; write `key: value` fields here",
    "list_type": "{value} is not a list; write `- item` lines or `[a, b]`",
    "too_short": "{value} is empty; give at least one",
    "string_too_short": "the empty string is not allowed here",
}
_BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _describe(error: ErrorDetails) -> str:
    """A sentence for one pydantic error: what was found, what is expected."""
    kind, value, context = error["type"], _shown(error["input"]), error.get("ctx", {})
    if kind == "value_error":  # our validators' own sentences
        return str(context.get("error", error["msg"]))
    bounds = [f"{words} {context[key]}" for key, words in _BOUNDS.items() if key in context]
    if bounds:
        return f"{value} is out of range; it must be {' and '.join(bounds)}"
    template = _MESSAGES.get(kind)
    return template.format(value=value) if template else f"{value}: {error['msg']}"


def _warn_unknown_fields(document: SourceDocument, model: BaseModel, path: FieldPath) -> None:
    fields = type(model).model_fields
    known = [info.alias or name for name, info in fields.items()]
    for key in model.model_extra or {}:
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        document.warn(
            (*path, key),
            f"unknown field, ignored (as StateFun does); {hint}known fields: {', '.join(known)}",
        )
    for name, info in fields.items():
        _warn_nested(document, getattr(model, name), (*path, info.alias or name))


def _warn_nested(document: SourceDocument, value: Any, path: FieldPath) -> None:
    if isinstance(value, BaseModel):
        _warn_unknown_fields(document, value, path)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _warn_nested(document, item, (*path, index))
