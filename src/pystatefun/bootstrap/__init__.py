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
import time
from collections.abc import Callable, Sequence
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
from pystatefun.savepoint.format import SavepointWriter
from pystatefun.store import DataDir, ExpireMode, KeyGroups, Payload, StateValue
from pystatefun.store.contents import StateContent
from pystatefun.types import Address, parse_typename

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


def bootstrap(
    source: Path,
    *,
    typename: str,
    id_column: str,
    columns: Sequence[StateColumn],
    savepoint: Path | None = None,
    data_dir: Path | None = None,
    source_format: str | None = None,
    key_groups: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> Report:
    """Load ``source`` as addresses of ``typename``, one per row: its id from ``id_column``,
    one state value per ``columns`` entry, into ``savepoint`` (a new file) or ``data_dir`` (new,
    or stopped): exactly one of them.

    ``source_format`` is ``csv``, ``jsonl`` or ``parquet`` (None: by the file's suffix).
    ``key_groups`` is for a new data dir or the savepoint (an existing data dir keeps its own).
    ``on_rows(n)`` hears of progress every few thousand rows. ``parallel`` reads and encodes
    the rows in a forked child process while this one writes (None: for inputs over 1 MiB,
    where it pays; only where ``fork`` exists). Raises ``BootstrapError`` with the report when
    a row did not fit; nothing is written then, and a data dir this call created is removed.
    """
    try:
        namespace, kind = parse_typename(typename)
    except ConfigurationError:
        raise BootstrapError(f"{typename!r} is not a function type like 'shop/cart'") from None
    if (savepoint is None) == (data_dir is None):
        raise BootstrapError("give exactly one output: a savepoint file or a data dir")
    if not columns:
        raise BootstrapError("map at least one column to a state (--state NAME=COLUMN:TYPE)")
    if not source.is_file():
        raise BootstrapError(f"no such file: {source}")
    report = Report()
    started = time.monotonic()
    mapping = (typename, id_column, list(columns))
    try:
        if savepoint is not None:
            groups = KeyGroups(key_groups) if key_groups else KeyGroups()
            load = _Load(report, mapping, groups.of, on_rows)
            header = {
                "created_at_ms": int(time.time() * 1000),
                "pystatefun": pystatefun.__version__,
                "key_groups": groups.count,
                "bootstrap": {"source": source.name, "type": typename},
            }
            with SavepointWriter(savepoint, header) as writer:
                load.run(
                    source, source_format, functools.partial(_write, writer, (namespace, kind))
                )
        else:
            assert data_dir is not None
            _into_data_dir(
                DataDir(data_dir),
                source=(source, source_format),
                mapping=mapping,
                key_groups=key_groups,
                report=report,
                on_rows=on_rows,
                parallel=parallel,
            )
    except ValueError as exc:
        if isinstance(exc, BootstrapError):
            raise
        raise BootstrapError(f"{source}: {exc}", report) from exc  # unreadable input
    report.seconds = time.monotonic() - started
    return report


def _into_data_dir(
    target: DataDir,
    *,
    source: tuple[Path, str | None],
    mapping: tuple[str, str, list[StateColumn]],
    key_groups: int | None,
    report: Report,
    on_rows: Callable[[int], None] | None,
    parallel: bool | None,
) -> None:
    namespace, kind = parse_typename(mapping[0])
    path, fmt = source
    with target.removed_on_failure(), target.loader(key_groups=key_groups, fresh=False) as loader:
        load = _Load(report, mapping, loader.key_groups.of, on_rows)
        flush = functools.partial(loader.put_states, namespace, kind)
        if _parallel(path, parallel):
            _run_in_child(load, source, flush)
        else:
            load.run(path, fmt, flush)


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
