"""Checks of the typenames a Kafka or Kinesis component names: its ``id``, and each topic's or
stream's ``valueType`` and ``targets``. Each adds its problem at the field and goes on."""

from __future__ import annotations

from pystatefun.module._components import PlaygroundEgress
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import Problems
from pystatefun.types import split_typename

__all__ = ["check_egress_id", "check_routing", "check_typename"]


def check_typename(
    document: SourceDocument, path: FieldPath, value: str, what: str, problems: Problems
) -> None:
    """``value`` at ``path`` is a ``<namespace>/<name>`` (``what``: a typename, a function
    type)."""
    if split_typename(value) is None:
        problems.add(document.problem(path, f"{value!r} is not a {what} like 'com.example/name'"))


def check_routing(
    document: SourceDocument,
    path: FieldPath,
    value_type: str,
    targets: list[str],
    problems: Problems,
) -> None:
    """The ``valueType`` and ``targets`` of the topic or stream at ``path``."""
    check_typename(document, (*path, "valueType"), value_type, "typename", problems)
    for number, target in enumerate(targets):
        check_typename(document, (*path, "targets", number), target, "function type", problems)


def check_egress_id(document: SourceDocument, value: str, problems: Problems) -> None:
    """An egress's ``id``: a typename, and not the playground egress's."""
    path: FieldPath = ("spec", "id")
    if value == PlaygroundEgress.ID:
        problems.add(document.problem(path, f"{value!r} is the playground egress's id; name "
                                      "this egress otherwise"))  # fmt: skip
    elif split_typename(value) is None:
        problems.add(document.problem(path, f"{value!r} is not a typename like "
                                      "'com.example/out'"))  # fmt: skip
