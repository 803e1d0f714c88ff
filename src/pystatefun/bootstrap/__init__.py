"""Bootstrap: bulk-load initial state for a function type from a file, for any SDK's functions.

Each input row becomes one address of ``typename`` (its id from ``id_column``) with one value
per ``StateColumn``, encoded with StateFun's type system. The output is a savepoint (to restore
anywhere) or a stopped data dir (new, or one to add state to). All or nothing: every row is
checked, each row that does not fit is reported with its line, and if any does not, nothing is
written. ``pystatefun bootstrap`` is the command line.
"""

from __future__ import annotations

import functools
import multiprocessing
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import final

import pystatefun
from pystatefun.bootstrap.mapping import MappingError as MappingError
from pystatefun.bootstrap.mapping import StateColumn as StateColumn
from pystatefun.bootstrap.mapping import parse_state_column as parse_state_column
from pystatefun.bootstrap.sources import read_rows
from pystatefun.errors import ConfigurationError
from pystatefun.runtime.keygroups import key_group_of
from pystatefun.savepoint.format import SavepointWriter
from pystatefun.store import ExpireMode, Payload, StateValue
from pystatefun.store.sqlite import DATABASE_FILE
from pystatefun.store.transfer import ContentLoader, StateContent
from pystatefun.types import Address

__all__ = [
    "BootstrapError",
    "MappingError",
    "Report",
    "StateColumn",
    "bootstrap",
    "parse_state_column",
]

_BATCH = 20_000
_ERRORS_KEPT = 20
DEFAULT_KEY_GROUPS = 128


@final
@dataclass(slots=True)
class Report:
    """What a bootstrap read and loaded; ``errors`` lists the first rows that did not fit."""

    rows: int = 0
    addresses: int = 0
    values: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


class BootstrapError(ConfigurationError):
    """Rows did not fit (nothing was written), or the input or output cannot be used."""

    code = "PSF-BS0001"

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report


def _stored_key_groups(data_dir: Path) -> int | None:
    database = data_dir / DATABASE_FILE
    if not database.exists():
        return None
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'key_groups'").fetchone()
    return None if row is None else int(row[0])


def bootstrap(
    source: tuple[Path, str | None],
    target: tuple[str, str, list[StateColumn]],
    output: tuple[Path | None, Path | None],
    *,
    key_groups: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> Report:
    """Load ``source`` (a file and its format, None: by suffix) as ``target`` (function type,
    id column, state columns) into ``output`` (a savepoint path, or a data dir: one of them).

    ``on_rows(n)`` hears of progress every few thousand rows. ``parallel`` reads and encodes
    the rows in a forked child process while this one writes (None: for inputs over 1 MiB,
    where it pays; only where ``fork`` exists). Raises ``BootstrapError`` with the report when
    a row did not fit; nothing is written then.
    """
    path, fmt = source
    typename, id_column, columns = target
    savepoint, data_dir = output
    namespace, slash, kind = typename.rpartition("/")
    if not (slash and namespace and kind):
        raise BootstrapError(f"{typename!r} is not a function type like 'shop/cart'")
    if (savepoint is None) == (data_dir is None):
        raise BootstrapError("give exactly one output: a savepoint file or a data dir")
    if not columns:
        raise BootstrapError("map at least one column to a state (--state NAME=COLUMN:TYPE)")
    if not path.is_file():
        raise BootstrapError(f"no such file: {path}")
    stored = None if data_dir is None else _stored_key_groups(data_dir)
    created = data_dir is not None and not data_dir.exists()
    groups = key_groups or stored or DEFAULT_KEY_GROUPS
    report = Report()
    started = time.monotonic()
    group_of = functools.partial(key_group_of, key_groups=groups)
    load = _Load(report, (typename, id_column, columns), group_of, on_rows)
    try:
        if savepoint is not None:
            header = {
                "created_at_ms": int(time.time() * 1000),
                "pystatefun": pystatefun.__version__,
                "key_groups": groups,
                "bootstrap": {"source": path.name, "type": typename},
            }
            with SavepointWriter(savepoint, header) as writer:
                load.run(path, fmt, functools.partial(_write, writer, (namespace, kind)))
        else:
            assert data_dir is not None
            with ContentLoader(data_dir, (groups, group_of), fresh=False) as loader:
                flush = functools.partial(loader.put_states, namespace, kind)
                if _parallel(path, parallel):
                    _run_in_child(load, (path, fmt), flush)
                else:
                    load.run(path, fmt, flush)
    except BaseException as exc:
        if created and data_dir is not None:  # made for this load: leave nothing behind
            shutil.rmtree(data_dir, ignore_errors=True)
        if isinstance(exc, ValueError) and not isinstance(exc, BootstrapError):
            raise BootstrapError(f"{path}: {exc}", report) from exc  # unreadable input
        raise
    report.seconds = time.monotonic() - started
    return report


_PARALLEL_FROM_BYTES = 2**20


def _parallel(path: Path, parallel: bool | None) -> bool:
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return path.stat().st_size >= _PARALLEL_FROM_BYTES if parallel is None else parallel


def _run_in_child(
    load: _Load, source: tuple[Path, str | None], flush: Callable[..., object]
) -> None:
    """Read and encode in a forked child while this process writes to SQLite: two cores
    (threads would not do: sqlite3 takes the GIL back for every row). The child sends batches
    through a pipe, then its report; an error in it comes back as the same ``BootstrapError``."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(load, source, sender), daemon=True)
    child.start()
    sender.close()
    try:
        while True:
            kind, payload = receiver.recv()
            if kind == "batch":
                flush(payload)
                continue
            report, message = payload
            load.adopt(report)
            if kind == "done":
                return
            if kind == "unreadable":
                raise ValueError(message)
            raise BootstrapError(message, load.report)
    except EOFError:
        raise BootstrapError("the process reading the input died; see its error above") from None
    finally:
        receiver.close()
        child.join(timeout=30)


def _child(load: _Load, source: tuple[Path, str | None], sender: Connection) -> None:
    path, fmt = source
    try:
        load.run(path, fmt, lambda batch: sender.send(("batch", batch)))
        sender.send(("done", (load.report, "")))
    except BootstrapError as exc:
        sender.send(("failed", (load.report, str(exc))))
    except ValueError as exc:
        sender.send(("unreadable", (load.report, str(exc))))
    finally:
        sender.close()


#: One state value to load: (address id, state name, key group, type name, encoded value).
_Value = tuple[str, str, int, str, bytes]


def _write(writer: SavepointWriter, function_type: tuple[str, str], values: list[_Value]) -> None:
    namespace, kind = function_type
    for address_id, name, _, typename, value in values:
        state = StateValue(name, Payload(typename, value), ExpireMode.NONE, 0, None)
        writer.write(StateContent(Address(namespace, kind, address_id), state))


@final
class _Load:
    """One pass over the rows: encode, check, hand over in batches; fail at the end."""

    def __init__(
        self,
        report: Report,
        target: tuple[str, str, list[StateColumn]],
        group_of: Callable[[str], int],
        on_rows: Callable[[int], None] | None,
    ) -> None:
        self._report = report
        _, self._id_column, self._columns = target
        self._group_of = group_of
        self._on_rows = on_rows
        self._seen: dict[str, int] = {}

    @property
    def report(self) -> Report:
        return self._report

    def adopt(self, report: Report) -> None:
        """Take over the counts of a run made in another process."""
        for name in ("rows", "addresses", "values", "failed", "errors"):
            setattr(self._report, name, getattr(report, name))

    def _fail(self, line: int, reason: str) -> None:
        report = self._report
        report.failed += 1
        if len(report.errors) < _ERRORS_KEPT:
            report.errors.append((line, reason))

    def run(self, path: Path, fmt: str | None, flush: Callable[[list[_Value]], object]) -> None:
        report, batch = self._report, []
        wanted = [self._id_column, *(c.column for c in self._columns)]
        for line, row in read_rows(path, fmt, wanted):
            report.rows += 1
            if isinstance(row, ValueError):
                self._fail(line, str(row))
                continue
            values = self._values(line, row)
            if values and not report.failed:
                batch.extend(values)
                if len(batch) >= _BATCH:
                    flush(batch)
                    batch = []
            if self._on_rows is not None and report.rows % 10_000 == 0:
                self._on_rows(10_000)
        if report.failed:
            listed = "; ".join(f"line {n}: {reason}" for n, reason in report.errors)
            more = report.failed - len(report.errors)
            raise BootstrapError(
                f"{report.failed} of {report.rows} row(s) do not fit, so nothing was loaded: "
                f"{listed}{f'; and {more} more' if more > 0 else ''}",
                report,
            )
        flush(batch)

    def _values(self, line: int, row: list[object]) -> list[_Value]:
        address_id = row[0]
        if address_id is None or address_id == "":
            self._fail(line, f"no id in column {self._id_column!r}")
            return []
        address_id = str(address_id)
        first = self._seen.setdefault(address_id, line)
        if first != line:
            self._fail(line, f"id {address_id!r} again (first at line {first})")
            return []
        group = self._group_of(address_id)
        values = []
        for column, value in zip(self._columns, row[1:], strict=True):
            if value is None:
                self._fail(line, f"no value in column {column.column!r} (state {column.name!r})")
                return []
            try:
                encoded = column.encode(value)
            except MappingError as exc:
                self._fail(line, f"column {column.column!r} (state {column.name!r}): {exc}")
                return []
            values.append((address_id, column.name, group, column.typename, encoded))
        self._report.addresses += 1
        self._report.values += len(values)
        return values
