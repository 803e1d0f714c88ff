"""``pystatefun sql`` and ``pystatefun state``: read a data dir's state, live, read-only."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from pystatefun.cli._options import data_dir_option
from pystatefun.errors import ConfigurationError
from pystatefun.query import StateSnapshot
from pystatefun.query.output import FORMATS, jsonable, write_rows
from pystatefun.types import Address

__all__ = ["sql", "state"]

_DATA_DIR = data_dir_option("The runtime's data dir (it may be running).")
_SAVEPOINT = click.option(
    "--savepoint",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read this savepoint instead of a data dir.",
)
_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; csv or json for programs.",
)


@contextmanager
def _snapshot(data_dir: Path, savepoint: Path | None) -> Iterator[StateSnapshot]:
    """A snapshot of ``data_dir``, or of ``savepoint`` restored into a temporary data dir."""
    if savepoint is None:
        with StateSnapshot(data_dir) as snapshot:
            yield snapshot
        return
    import tempfile  # noqa: PLC0415 - keeps start-up fast: only --savepoint needs these

    from pystatefun import savepoint as savepoints  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pystatefun-savepoint-") as scratch:
        savepoints.restore(savepoint, Path(scratch) / "data")
        with StateSnapshot(Path(scratch) / "data") as snapshot:
            yield snapshot


def _address(typename: str, address_id: str) -> Address:
    try:
        return Address.of(typename, address_id)
    except ConfigurationError:
        raise click.BadParameter(f"{typename!r} is not a function type like 'shop/cart'") from None


@click.command()
@click.argument("query")
@_DATA_DIR
@_SAVEPOINT
@_FORMAT
def sql(query: str, data_dir: Path, savepoint: Path | None, fmt: str) -> None:
    """Run the read-only SQL QUERY over a consistent snapshot of the state.

    Every function type and state name is a view, "<namespace>/<type>.<state>" (quote it:
    SELECT id, value FROM "shop/cart.items"), with the columns id, value (primitives as SQL
    values, JSON as text for json_extract), typename, expires_at_ms and raw (the bytes);
    state_values holds every live value with namespace, type and name. `pystatefun state ls`
    lists the views. A running runtime is not blocked.
    """
    with _snapshot(data_dir, savepoint) as snapshot:
        try:
            columns, rows = snapshot.query(query)
        except sqlite3.Error as exc:
            hint = ""
            if "readonly" in str(exc) or "query_only" in str(exc):
                hint = " (pystatefun sql only reads: the state changes through functions)"
            elif "no such table" in str(exc):
                hint = " (`pystatefun state ls` lists the views; a state no address holds has none)"
            raise click.ClickException(f"SQL error: {exc}{hint}") from exc
        count = write_rows(columns, rows, fmt, sys.stdout)
    click.echo(f"{count} row(s)", err=True)


@click.group()
def state() -> None:
    """Read the state of addresses, live and read-only."""


@state.command("ls")
@click.argument("typename", required=False)
@_DATA_DIR
@_SAVEPOINT
@_FORMAT
def ls(typename: str | None, data_dir: Path, savepoint: Path | None, fmt: str) -> None:
    """Without TYPENAME, the views: each function type's states and how many addresses hold
    one. With TYPENAME (like shop/cart), the ids of its addresses that hold state."""
    with _snapshot(data_dir, savepoint) as snapshot:
        if typename is None:
            rows = [
                (f"{v.namespace}/{v.type}", v.name, v.addresses, v.view) for v in snapshot.views
            ]
            write_rows(["function_type", "state", "addresses", "view"], rows, fmt, sys.stdout)
            return
        _address(typename, "-")
        ids = [(a.id,) for a in snapshot.addresses(typename)]
        write_rows(["id"], ids, fmt, sys.stdout)


@state.command("get")
@click.argument("target", metavar="TYPENAME [ID]")
@click.argument("address_id", metavar="", required=False)
@_DATA_DIR
@_SAVEPOINT
def get(target: str, address_id: str | None, data_dir: Path, savepoint: Path | None) -> None:
    """The live state of one address, as JSON: {"<state>": {"typename": ..., "value": ...}}.

    Name the address as TYPENAME ID (shop/cart alice), or as one argument the way logs, URLs
    and dead letters print it (shop/cart/alice: the id is after the last slash; an id that
    itself holds a slash needs the two-argument form). Exits 1 when the address holds no state.
    """
    if address_id is None:
        target, slash, address_id = target.rpartition("/")
        if not slash or not address_id:
            raise click.BadParameter(
                f"{target + slash + address_id!r} is not an address; give TYPENAME ID "
                "(shop/cart alice) or namespace/type/id (shop/cart/alice)"
            )
    address = _address(target, address_id)
    with _snapshot(data_dir, savepoint) as snapshot:
        values = snapshot.state_of(address)
    if not values:
        raise click.ClickException(f"{address} holds no state")
    document = {n: {"typename": t, "value": jsonable(v)} for n, (t, v) in values.items()}
    click.echo(json.dumps(document, ensure_ascii=False, indent=1))


@state.command("export")
@click.argument("typename", required=False)
@_DATA_DIR
@_SAVEPOINT
def export(typename: str | None, data_dir: Path, savepoint: Path | None) -> None:
    """Every address's live state (or one function type's), as JSON Lines: one
    {"namespace", "type", "id", "state": {...}} per address, from one snapshot."""
    if typename is not None:
        _address(typename, "-")
    count = 0
    with _snapshot(data_dir, savepoint) as snapshot:
        current: Address | None = None
        values: dict[str, object] = {}
        rows = snapshot.rows(
            "SELECT namespace, type, id, name, typename, value FROM state_values "
            "WHERE ? IS NULL OR namespace || '/' || type = ? ORDER BY namespace, type, id, name",
            (typename, typename),
        )
        for namespace, kind, address_id, name, value_type, value in rows:
            address = Address(namespace, kind, address_id)
            if address != current:
                if current is not None:
                    _emit(current, values)
                    count += 1
                current, values = address, {}
            values[name] = {"typename": value_type, "value": jsonable(value)}
        if current is not None:
            _emit(current, values)
            count += 1
    click.echo(f"{count} address(es)", err=True)


def _emit(address: Address, values: dict[str, object]) -> None:
    record = {"namespace": address.namespace, "type": address.type, "id": address.id}
    click.echo(json.dumps({**record, "state": values}, ensure_ascii=False))
