"""``StateSnapshot``: a read-only, consistent view of a data dir's state, as SQL views.

Each function type and state name with a value gets a view named ``"<namespace>/<type>.<name>"``
(quote it in SQL: ``SELECT id, value FROM "shop/cart.items"``) with the columns ``id``,
``value`` (decoded, see ``values``), ``typename``, ``expires_at_ms`` and ``raw`` (the bytes).
``state_values`` is every live value of every address in one view, with ``namespace``,
``type`` and ``name`` too. Expired values are left out: they are gone for the functions, even
before the runtime's purge deletes them.

The snapshot is one SQLite read transaction: every query sees the same committed steps, and
the runtime goes on writing meanwhile (a WAL reader never blocks the writer; a long read only
holds back checkpoints, so keep it short). The connection is read-only at two levels: the file
is opened with ``mode=ro``, and ``query_only`` refuses even temporary tables.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, final

from pystatefun.query.values import sql_value
from pystatefun.store import DataDir
from pystatefun.types import Address, split_typename

__all__ = ["StateSnapshot", "StateView"]

_COLUMNS = "typed_value(typename, value) AS value, typename, expires_at_ms, value AS raw"
# Live at the snapshot's time (a function, because a view cannot take parameters).
_LIVE = "(expires_at_ms IS NULL OR expires_at_ms > snapshot_now())"


@final
@dataclass(frozen=True, slots=True)
class StateView:
    """One view: a function type's state, by name, and how many addresses hold a value."""

    namespace: str
    type: str
    name: str
    addresses: int

    @property
    def view(self) -> str:
        """The view's name, as written in SQL (quoted)."""
        return '"' + f"{self.namespace}/{self.type}.{self.name}".replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@final
class StateSnapshot:
    """A consistent, read-only snapshot of the state in ``data_dir``; a context manager."""

    def __init__(self, data_dir: Path, *, now_ms: int | None = None) -> None:
        self._data_dir = DataDir(data_dir)
        self._db = self._data_dir.snapshot_connection()  # the snapshot: one transaction
        self._db.create_function("typed_value", 2, sql_value, deterministic=True)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self._db.create_function("snapshot_now", 0, lambda: now, deterministic=True)
        try:
            with self._data_dir.translating():
                self.views = self._create_views()
        except BaseException:
            self._db.close()
            raise
        self._db.execute("PRAGMA query_only = ON")

    def _create_views(self) -> list[StateView]:
        rows = self._db.execute(
            f"SELECT namespace, type, name, COUNT(*) FROM main.state WHERE {_LIVE} "  # noqa: S608 - constants only
            "GROUP BY namespace, type, name ORDER BY namespace, type, name"
        ).fetchall()
        views = [StateView(r[0], r[1], r[2], int(r[3])) for r in rows]
        self._db.execute(
            "CREATE TEMP VIEW state_values AS SELECT namespace, type, id, name, "  # noqa: S608 - constants only
            f"{_COLUMNS} FROM main.state WHERE {_LIVE}"
        )
        for view in views:
            # A view takes no parameters: the names go in as quoted SQL literals.
            match = " AND ".join(
                f"{column} = {_literal(value)}"
                for column, value in (("namespace", view.namespace), ("type", view.type),
                                      ("name", view.name))
            )  # fmt: skip
            self._db.execute(
                f"CREATE TEMP VIEW {view.view} AS SELECT id, {_COLUMNS} FROM main.state "  # noqa: S608 - quoted by _literal
                f"WHERE {match} AND {_LIVE}"
            )
        return views

    def limit_time(self, seconds: float) -> None:
        """Interrupt any statement still running ``seconds`` from now (``sqlite3.Error``
        "interrupted"): a console's runaway query must not hold the snapshot open for good."""
        deadline = time.monotonic() + seconds
        self._db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

    def query(
        self, sql: str, parameters: tuple[Any, ...] = (), *, limit: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only SQL statement; its column names and rows (the first ``limit``
        of them, when given).

        A statement that writes, or is not valid SQL, raises ``sqlite3.Error`` with SQLite's
        message; a damaged data dir raises ``DataDirDamagedError``.
        """
        with self._data_dir.translating():
            cursor = self._db.execute(sql, parameters)
            columns = [d[0] for d in cursor.description or ()]
            return columns, cursor.fetchall() if limit is None else cursor.fetchmany(limit)

    def rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of a query, one at a time (for exports larger than memory)."""
        with self._data_dir.translating():
            yield from self._db.execute(sql, parameters)

    def addresses(self, typename: str | None = None) -> list[Address]:
        """Every address that holds a live value, or those of one function type."""
        namespace, kind = split_typename(typename or "") or ("", "")
        rows = self.rows(
            "SELECT DISTINCT namespace, type, id FROM state_values "
            "WHERE ? IS NULL OR (namespace = ? AND type = ?) ORDER BY namespace, type, id",
            (typename, namespace, kind),
        )
        return [Address(r[0], r[1], r[2]) for r in rows]

    def state_of(self, address: Address) -> dict[str, tuple[str, Any]]:
        """The live values of ``address``: state name -> (type name, decoded value)."""
        rows = self.rows(
            "SELECT name, typename, value FROM state_values "
            "WHERE namespace = ? AND type = ? AND id = ? ORDER BY name",
            (address.namespace, address.type, address.id),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateSnapshot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
