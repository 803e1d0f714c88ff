"""``pystatefun dead-letters``: list the batches that failed for good, and re-drive them."""

from __future__ import annotations

import base64
import datetime
import functools
import json
from pathlib import Path

import click

from pystatefun.cli._options import data_dir_option
from pystatefun.errors import ProtocolError
from pystatefun.io.playground import decode_text
from pystatefun.protocol.typed_values import PRIMITIVES
from pystatefun.runtime.keygroups import key_group_of
from pystatefun.runtime.options import wall_clock_ms
from pystatefun.store._tables import Tables
from pystatefun.store.sqlite import DATABASE_FILE, open_tables

__all__ = ["dead_letters"]

_DATA_DIR = data_dir_option("The runtime's data dir.")


def _open(data_dir: Path, *, writable: bool) -> Tables:
    """The data dir's tables: read-only for inspection, writable (with key groups) to re-drive."""
    if not (data_dir / DATABASE_FILE).exists():
        raise click.ClickException(f"no pystatefun data dir at {data_dir} (no {DATABASE_FILE})")
    probe = open_tables(data_dir, "fsync", lambda _: 0, read_only=True)
    if not writable:
        return probe
    # Rows are tagged with key groups, whose number the data dir recorded when it was created.
    groups = probe.meta("key_groups")
    probe.close()
    if groups is None:
        raise click.ClickException(f"{data_dir} has no key_groups record; was it ever run?")
    return open_tables(data_dir, "fsync", functools.partial(key_group_of, key_groups=int(groups)))


def _text_or_base64(typename: str, value: bytes | None) -> dict[str, str | None]:
    """A message value for people: primitives as the text the ingress takes, other values as
    UTF-8 when they are text, else base64."""
    if value is None:
        return {"value": None}
    if typename in PRIMITIVES:
        try:
            return {"value": decode_text(typename, value).decode()}
        except ProtocolError:  # bytes that are not the type they claim: show them raw
            return {"value_base64": base64.b64encode(value).decode()}
    try:
        return {"value": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode()}


@click.group(name="dead-letters")
def dead_letters() -> None:
    """Batches that failed for good: list them, re-drive them into their mailboxes.

    Safe while the runtime runs: it picks re-driven messages up within seconds.
    """


@dead_letters.command(name="list")
@_DATA_DIR
def list_(data_dir: Path) -> None:
    """Print every dead letter as one JSON object per line."""
    tables = _open(data_dir, writable=False)
    try:
        for letter in tables.dead_letters(limit=-1):
            failed_at = datetime.datetime.fromtimestamp(letter.failed_at_ms / 1000, datetime.UTC)
            messages = [
                {
                    "caller": str(m.caller) if m.caller else None,
                    "typename": m.payload.typename,
                    **_text_or_base64(m.payload.typename, m.payload.value),
                }
                for m in letter.messages
            ]
            click.echo(
                json.dumps(
                    {
                        "id": letter.dead_letter_id,
                        "address": str(letter.target),
                        "error": letter.error,
                        "attempts": letter.attempts,
                        "failed_at": failed_at.isoformat(),
                        "messages": messages,
                    },
                    ensure_ascii=False,
                )
            )
    finally:
        tables.close()


@dead_letters.command()
@_DATA_DIR
@click.option("--id", "ids", type=int, multiple=True, help="A dead letter to re-drive (repeat).")
@click.option("--all", "everything", is_flag=True, help="Re-drive every dead letter.")
def redrive(data_dir: Path, ids: tuple[int, ...], everything: bool) -> None:
    """Move dead letters' messages back to the end of their mailboxes.

    Fix the cause first (deploy the function, correct the module): the messages are invoked
    again exactly as they were.
    """
    if not ids and not everything:
        raise click.UsageError("name dead letters with --id N (repeatable) or pass --all")
    tables = _open(data_dir, writable=True)
    try:
        count = tables.redrive(None if everything else list(ids), wall_clock_ms())
    finally:
        tables.close()
    click.echo(f"{count}")
    click.echo(f"re-drove {count} message(s)", err=True)
