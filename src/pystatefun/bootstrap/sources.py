"""Reading the rows to load: CSV, JSON Lines, and Parquet when ``pyarrow`` is installed.

Every reader yields ``(line, values)``: the values of the requested columns, in the order
requested (None where a row has no such column), and where the row is in the input (the file's
line for CSV and JSON Lines, the row number for Parquet), so that an error can say where to
look. A row that cannot even be parsed is yielded as an exception. Only the requested columns
are picked out of each row: a load touches millions of rows.
"""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["FORMATS", "Row", "count_rows", "read_rows"]

FORMATS = ("csv", "jsonl", "parquet")
Row = tuple[int, list[Any] | ValueError]


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    formats = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet"}
    if suffix not in formats:
        raise ValueError(
            f"cannot tell the format of {path} from its name; pass --format ({', '.join(FORMATS)})"
        )
    return formats[suffix]


def read_rows(path: Path, fmt: str | None, columns: Sequence[str]) -> Iterator[Row]:
    """The ``columns`` of each row of ``path``; ``fmt`` None means by the file's suffix.

    Raises ``ValueError`` at once when the file has no such column (CSV and Parquet have a
    header to check; a JSON Lines row without one gives None for it).
    """
    kind = _format_of(path, fmt)
    if kind == "parquet":
        yield from _parquet(path, columns)
        return
    with path.open("r", encoding="utf-8", newline="") as text:
        if kind == "csv":
            yield from _csv(text, columns)
        else:
            yield from _jsonl(text, columns)


def count_rows(path: Path, fmt: str | None) -> int | None:
    """About how many rows ``path`` holds, cheaply, for a progress bar: lines after the header
    (CSV; a quoted cell with a newline counts twice), lines (JSON Lines), the metadata's count
    (Parquet). None when it cannot tell."""
    try:
        kind = _format_of(path, fmt)
        if kind == "parquet":
            pq = importlib.import_module("pyarrow.parquet")
            return int(pq.ParquetFile(path).metadata.num_rows)
        lines = 0
        last = b"\n"
        with path.open("rb") as raw:
            while chunk := raw.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"  # a last line without its newline
        return max(lines - (kind == "csv"), 0)
    except (OSError, ValueError, ImportError):
        return None


def _missing(columns: Sequence[str], present: Sequence[str]) -> ValueError | None:
    absent = [c for c in columns if c not in present]
    if not absent:
        return None
    return ValueError(
        f"no column {', '.join(map(repr, absent))}; the columns are {', '.join(present)}"
    )


def _csv(text: IO[str], columns: Sequence[str]) -> Iterator[Row]:
    reader = csv.reader(text)
    try:
        header = next(reader, [])
        missing = _missing(columns, header)
        if missing is not None:
            raise missing
        picks = [header.index(c) for c in columns]
        width = len(header)
        for row in reader:
            if len(row) != width:
                if not row:
                    continue  # a blank line
                yield reader.line_num, ValueError(f"{len(row)} cells; the header has {width}")
                continue
            yield reader.line_num, [row[i] for i in picks]
    except csv.Error as exc:
        yield reader.line_num, ValueError(f"not CSV: {exc}")


def _jsonl(text: IO[str], columns: Sequence[str]) -> Iterator[Row]:
    for line, raw in enumerate(text, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as exc:
            yield line, ValueError(f"not JSON: {exc}")
            continue
        if not isinstance(row, dict):
            yield line, ValueError(f"a JSON Lines row must be an object, got {type(row).__name__}")
            continue
        yield line, [row.get(c) for c in columns]


def _parquet(path: Path, columns: Sequence[str]) -> Iterator[Row]:
    try:
        pq = importlib.import_module("pyarrow.parquet")  # optional, and heavy
    except ImportError:
        raise ValueError(
            "reading Parquet needs pyarrow: pip install pyarrow (or use CSV or JSON Lines)"
        ) from None
    table = pq.ParquetFile(path)
    missing = _missing(columns, table.schema_arrow.names)
    if missing is not None:
        raise missing
    number = 0
    for batch in table.iter_batches(batch_size=65_536, columns=list(dict.fromkeys(columns))):
        for row in batch.to_pylist():
            number += 1
            yield number, [row.get(c) for c in columns]
