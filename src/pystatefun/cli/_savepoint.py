"""``pystatefun savepoint create | restore | info``: a data dir's contents in one file."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import click

from pystatefun import savepoint as savepoints
from pystatefun.cli._options import data_dir_option

__all__ = ["savepoint"]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n) or "nothing"


@click.group()
def savepoint() -> None:
    """Savepoints: back up a data dir, move it to another machine, restore it."""


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
@data_dir_option("The data dir to save; its runtime may be running (it is not paused).")
def create(path: Path, data_dir: Path) -> None:
    """Write the savepoint of the data dir to PATH: state (with TTLs), waiting messages,
    timers, dead letters, unread egress records and idempotency keys, as of one commit."""
    started = time.monotonic()
    try:
        counts = savepoints.create(data_dir, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc}") from exc
    click.echo(
        f"saved {data_dir} to {path}: {_counts(counts)} "
        f"({path.stat().st_size:,} bytes, {time.monotonic() - started:.2f} s)",
        err=True,
    )


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="The new data dir to restore into (it must not hold anything yet).",
)
@click.option(
    "--key-groups",
    type=click.IntRange(1),
    default=None,
    help="Key groups of the new data dir; default: the savepoint's.",
)
def restore(path: Path, data_dir: Path, key_groups: int | None) -> None:
    """Restore the savepoint PATH into a new data dir, then `pystatefun run` it."""
    started = time.monotonic()
    try:
        counts = savepoints.restore(path, data_dir, key_groups)
    except OSError as exc:
        raise click.ClickException(f"cannot restore {path} into {data_dir}: {exc}") from exc
    click.echo(
        f"restored {path} into {data_dir}: {_counts(counts)} ({time.monotonic() - started:.2f} s)",
        err=True,
    )


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
def info(path: Path) -> None:
    """Check the savepoint PATH record by record and print what it holds, as JSON."""
    try:
        header, counts = savepoints.info(path)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    created = datetime.datetime.fromtimestamp(header["created_at_ms"] / 1000, datetime.UTC)
    document = {**header, "created_at": created.isoformat(), "counts": counts, "valid": True}
    click.echo(json.dumps(document, indent=1))
