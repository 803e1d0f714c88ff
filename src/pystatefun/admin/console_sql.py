"""The web console's SQL box (``POST /api/sql``): ``pystatefun sql`` over the live state.

The query runs on a ``StateSnapshot`` of the runtime's data dir, in a thread (SQLite blocks),
on a read-only connection: the file is opened read-only and ``query_only`` is on, so a write
is refused by SQLite itself, whatever the text says. At most ``ROWS_SHOWN`` rows come back
(``truncated`` says there were more), and a statement still running after ``TIME_LIMIT_S`` is
interrupted, so one query cannot hold a snapshot open (and checkpoints back) for good.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from pystatefun.admin.console_errors import BadInputError, NotAvailableError
from pystatefun.errors import DataDirDamagedError, DataDirError, PystatefunError
from pystatefun.query import StateSnapshot

__all__ = ["QUERY_MAX_CHARS", "ROWS_SHOWN", "TIME_LIMIT_S", "run_sql"]

ROWS_SHOWN = 500
TIME_LIMIT_S = 10.0
QUERY_MAX_CHARS = 20_000
_TEXT_SHOWN = 2_000  # characters of one cell; the page shows a table, not documents

Json = dict[str, object]
Cell = int | float | str | dict[str, str] | None


def _cell(value: object) -> Cell:
    if isinstance(value, bytes):
        return {"hex": value[:_TEXT_SHOWN].hex(" ")}
    if isinstance(value, str) and len(value) > _TEXT_SHOWN:
        return value[:_TEXT_SHOWN] + "…"
    assert value is None or isinstance(value, int | float | str), value
    return value


def _hint(error: sqlite3.Error) -> str:
    text = str(error)
    if "readonly" in text or "query_only" in text:
        return "the SQL box only reads: state changes through functions"
    if "no such table" in text:
        return 'each function type\'s state is a view like "shop/cart.items"; state_values: all'
    if "interrupted" in text:
        return f"the query ran longer than {TIME_LIMIT_S:g} s; narrow it (WHERE, LIMIT)"
    return "the views are listed by `pystatefun state ls`"


def _query(data_dir: Path, query: str) -> Json:
    started = time.monotonic()
    with StateSnapshot(data_dir) as snapshot:
        snapshot.limit_time(TIME_LIMIT_S)
        try:
            columns, rows = snapshot.query(query, limit=ROWS_SHOWN + 1)
        except sqlite3.Error as exc:
            raise BadInputError(f"SQL error: {exc} ({_hint(exc)})") from exc
        except DataDirError as exc:  # SQLite's refusal of the statement, as the store words it
            cause = exc.__cause__
            if isinstance(exc, DataDirDamagedError) or not isinstance(cause, sqlite3.Error):
                raise
            raise BadInputError(f"SQL error: {cause} ({_hint(cause)})") from exc
    return {"columns": columns,
            "rows": [[_cell(v) for v in row] for row in rows[:ROWS_SHOWN]],
            "truncated": len(rows) > ROWS_SHOWN,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}  # fmt: skip


async def run_sql(data_dir: Path | None, query: object) -> Json:
    """The columns and (at most ``ROWS_SHOWN``) rows of ``query`` over the state now."""
    if data_dir is None:
        raise NotAvailableError(
            "SQL is not available in cluster mode: a worker holds only its own partitions. "
            "Take a savepoint (`pystatefun savepoint create --cluster ...`) and query it with "
            "`pystatefun sql --savepoint FILE`"
        )
    if not isinstance(query, str) or not query.strip():
        raise BadInputError('send {"query": "SELECT ..."}: the SQL text as a string')
    if len(query) > QUERY_MAX_CHARS:
        raise BadInputError(f"the query is over {QUERY_MAX_CHARS:,} characters; shorten it")
    try:
        return await asyncio.to_thread(_query, data_dir, query)
    except PystatefunError as exc:
        raise NotAvailableError(f"cannot read the data dir now: {exc}") from exc
