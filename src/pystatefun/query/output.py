"""Query results for people and for programs: an aligned table, CSV, or JSON.

SQL values print as themselves; bytes (a value that is neither a primitive nor JSON) print as
``base64:<text>`` in a table or CSV, and as ``{"base64": "<text>"}`` in JSON, so no output
format loses a byte.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

__all__ = ["FORMATS", "jsonable", "write_rows"]

FORMATS = ("table", "csv", "json")
_TABLE_CELL_MAX = 80


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return "base64:" + base64.b64encode(value).decode()
    return str(value)


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: bytes become ``{"base64": ...}``."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, out: TextIO) -> int:
    """Write ``rows`` in format ``fmt`` (one of ``FORMATS``); returns how many rows."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for row in rows:
            writer.writerow([_text(v) for v in row])
            count += 1
        return count
    if fmt == "json":
        objects = [dict(zip(columns, map(jsonable, row), strict=True)) for row in rows]
        json.dump(objects, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return len(objects)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return _write_table(columns, [[_cell(v) for v in row] for row in rows], out)


def _cell(value: Any) -> str:
    text = _text(value).replace("\n", " ")
    return text if len(text) <= _TABLE_CELL_MAX else text[: _TABLE_CELL_MAX - 1] + "…"


def _write_table(columns: Sequence[str], cells: list[list[str]], out: TextIO) -> int:
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    out.write(line + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return len(cells)
