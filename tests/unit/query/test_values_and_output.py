"""Typed values as SQL values, and the three output formats (no lossy byte anywhere)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pystatefun.protocol.typed_values import BOOL, DOUBLE, INT, LONG, STRING
from pystatefun.query import sql_value
from pystatefun.query.output import write_rows


@pytest.mark.parametrize(
    ("typename", "value", "expected"),
    [
        (INT.typename, INT.encode(-7), -7),
        (LONG.typename, LONG.encode(2**40), 2**40),
        (DOUBLE.typename, DOUBLE.encode(2.5), 2.5),
        (BOOL.typename, BOOL.encode(True), 1),
        (STRING.typename, STRING.encode("héllo"), "héllo"),
        (INT.typename, b"", 0),  # proto3 writes a zero value as no bytes
        ("shop/Cart", b'{"items": {"apple": 2}}', '{"items": {"apple": 2}}'),
        ("shop/Blob", b"\xff\x00binary", b"\xff\x00binary"),
        (INT.typename, b"\xff\xff", b"\xff\xff"),  # not an int wrapper: shown as it is
        ("shop/Cart", None, None),
    ],
)
def test_sql_value(typename: str, value: bytes | None, expected: object) -> None:
    assert sql_value(typename, value) == expected


ROWS = [("a", 1, b"\x00\xff"), ("b", None, "x,y")]


def test_a_table_aligns_columns_and_shows_bytes_as_base64() -> None:
    out = io.StringIO()
    assert write_rows(["id", "n", "v"], ROWS, "table", out) == 2
    assert out.getvalue().splitlines() == [
        "id  n  v",
        "--  -  -----------",
        "a   1  base64:AP8=",
        "b      x,y",
    ]


def test_csv_and_json_round_trip_every_value() -> None:
    out = io.StringIO()
    write_rows(["id", "n", "v"], ROWS, "csv", out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["id", "n", "v"],
        ["a", "1", "base64:AP8="],
        ["b", "", "x,y"],
    ]
    out = io.StringIO()
    write_rows(["id", "n", "v"], ROWS, "json", out)
    assert json.loads(out.getvalue()) == [
        {"id": "a", "n": 1, "v": {"base64": "AP8="}},
        {"id": "b", "n": None, "v": "x,y"},
    ]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="table, csv, json"):
        write_rows(["id"], [], "xml", io.StringIO())
