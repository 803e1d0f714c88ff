"""Client settings as StateFun writes them: a list of single-entry maps (``- name: value``), as
Kafka's ``properties`` and Kinesis's ``clientConfigProperties`` are; a plain mapping is taken
too. Values become the strings a client takes (booleans as ``true``/``false``)."""

from __future__ import annotations

from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import Problems

__all__ = ["client_properties"]


def client_properties(
    document: SourceDocument, raw: object, problems: Problems, name: str = "properties"
) -> dict[str, tuple[str, FieldPath]]:
    """Each setting of ``spec.<name>`` with the path it is written at; a malformed entry is a
    problem at its own path."""
    entries = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    found: dict[str, tuple[str, FieldPath]] = {}
    for index, entry in enumerate(entries):
        path: FieldPath = ("spec", name) if isinstance(raw, dict) else ("spec", name, index)
        if not isinstance(entry, dict) or (isinstance(raw, list) and len(entry) != 1):
            problems.add(document.problem(path, "each property is one `name: value` entry"))
            continue
        for key, value in entry.items():
            if isinstance(value, dict | list) or value is None:
                problems.add(document.problem(path, f"property {key!r} needs a plain value"))
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            found[str(key)] = (text, path)
    return found
