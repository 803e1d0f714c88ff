"""``pystatefun dead-letters``: list the batches that failed for good, re-drive or delete them."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import click

from pystatefun.cli._options import data_dir_option
from pystatefun.errors import ProtocolError
from pystatefun.protocol.typed_values import PRIMITIVES, text_of
from pystatefun.store.datadir import DataDir

__all__ = ["dead_letters"]

_DATA_DIR = data_dir_option("The runtime's data dir.")
_IDS = click.option("--id", "ids", type=int, multiple=True, help="A dead letter's id (repeat).")
_ALL = click.option("--all", "everything", is_flag=True, help="Every dead letter.")


def _chosen(ids: tuple[int, ...], everything: bool) -> list[int] | None:
    """The ids asked for (None: all of them)."""
    if bool(ids) == everything:
        raise click.UsageError("name dead letters with --id N (repeatable) or pass --all")
    return None if everything else list(ids)


def _text_or_base64(typename: str, value: bytes | None) -> dict[str, str | None]:
    """A message value for people: primitives as the text the ingress takes, other values as
    UTF-8 when they are text, else base64."""
    if value is None:
        return {"value": None}
    if typename in PRIMITIVES:
        try:
            return {"value": text_of(typename, value)}
        except ProtocolError:  # bytes that are not the type they claim: show them raw
            return {"value_base64": base64.b64encode(value).decode()}
    try:
        return {"value": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode()}


@click.group(name="dead-letters")
def dead_letters() -> None:
    """Batches that failed for good: list them, re-drive them into their mailboxes, delete them.

    Safe while the runtime runs: it picks re-driven messages up within seconds.
    """


@dead_letters.command(name="list")
@_DATA_DIR
def list_(data_dir: Path) -> None:
    """Print every dead letter as one JSON object per line."""
    for letter in DataDir(data_dir).dead_letters():
        failed_at = datetime.datetime.fromtimestamp(letter.failed_at_ms / 1000, datetime.UTC)
        messages = [
            {
                "caller": str(m.caller) if m.caller else None,
                "typename": m.payload.typename,
                **_text_or_base64(m.payload.typename, m.payload.value),
            }
            for m in letter.messages
        ]
        record = {
            "id": letter.dead_letter_id,
            "address": str(letter.target),
            "error": letter.error,
            "attempts": letter.attempts,
            "failed_at": failed_at.isoformat(),
            "messages": messages,
        }
        click.echo(json.dumps(record, ensure_ascii=False))


@dead_letters.command()
@_DATA_DIR
@_IDS
@_ALL
def redrive(data_dir: Path, ids: tuple[int, ...], everything: bool) -> None:
    """Move dead letters' messages back to the end of their mailboxes.

    Fix the cause first (deploy the function, correct the module): the messages are invoked
    again exactly as they were. An id that does not exist re-drives nothing and exits 1.
    """
    # The clock of the runtime's timers; its package brings the whole runtime, so only here.
    from pystatefun.runtime.options import wall_clock_ms  # noqa: PLC0415

    count = DataDir(data_dir).redrive(_chosen(ids, everything), now_ms=wall_clock_ms())
    click.echo(f"{count}")
    click.echo(f"re-drove {count} message(s)", err=True)


@dead_letters.command()
@_DATA_DIR
@_IDS
@_ALL
def delete(data_dir: Path, ids: tuple[int, ...], everything: bool) -> None:
    """Delete dead letters for good (their messages are not delivered).

    An id that does not exist deletes nothing and exits 1.
    """
    count = DataDir(data_dir).delete_dead_letters(_chosen(ids, everything))
    click.echo(f"{count}")
    click.echo(f"deleted {count} dead letter(s)", err=True)
