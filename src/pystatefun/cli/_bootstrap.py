"""``pystatefun bootstrap``: bulk-load initial state from CSV, JSON Lines or Parquet."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from pystatefun.bootstrap import (
    MappingError,
    StateColumn,
    parse_state_column,
)
from pystatefun.bootstrap import (
    bootstrap as load,
)
from pystatefun.bootstrap.sources import FORMATS, count_rows

__all__ = ["bootstrap"]


def _columns(
    context: click.Context, parameter: click.Parameter, specs: tuple[str, ...]
) -> list[StateColumn]:
    try:
        return [parse_state_column(spec) for spec in specs]
    except MappingError as exc:
        raise click.BadParameter(str(exc), context, parameter) from exc


@click.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--type", "typename", required=True, help="The function type, like shop/cart.")
@click.option("--id-column", required=True, help="The column that holds the address id.")
@click.option(
    "--state",
    "columns",
    multiple=True,
    required=True,
    callback=_columns,
    help="NAME=COLUMN:TYPE, once per state; TYPE is int, long, float, double, bool, string, "
    "json:<namespace/Type>, bytes:<namespace/Type> or base64:<namespace/Type>.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: by the file's suffix.")
@click.option(
    "--savepoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a savepoint (restore it with `pystatefun savepoint restore`).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Or load into this data dir, new or stopped (values already there are replaced).",
)
@click.option(
    "--key-groups",
    type=click.IntRange(1),
    default=None,
    help="Key groups of a new data dir or of the savepoint; default 128 (an existing data "
    "dir keeps its own).",
)
def bootstrap(  # noqa: PLR0917 - click passes every option by keyword
    source: Path,
    typename: str,
    id_column: str,
    columns: list[StateColumn],
    fmt: str | None,
    savepoint: Path | None,
    data_dir: Path | None,
    key_groups: int | None,
) -> None:
    """Load initial state for the function type --type from SOURCE: one address per row.

    For functions of any SDK: values are encoded with StateFun's type system. Every row is
    checked first; if one does not fit, each is reported with its line and nothing is loaded.
    """
    # A progress bar only for a person watching: a pipe or a log gets the summary line alone.
    total = count_rows(source, fmt) if sys.stderr.isatty() else None
    progress = (
        contextlib.nullcontext(None)
        if total is None
        else click.progressbar(
            length=total, label="rows", file=sys.stderr, show_pos=True, show_eta=True
        )
    )
    with progress as bar:
        report = load(
            source,
            typename=typename,
            id_column=id_column,
            columns=columns,
            savepoint=savepoint,
            data_dir=data_dir,
            source_format=fmt,
            key_groups=key_groups,
            on_rows=None if bar is None else bar.update,
        )
    where = savepoint if savepoint is not None else data_dir
    click.echo(
        f"loaded {report.values:,} value(s) of {report.addresses:,} address(es) of {typename} "
        f"into {where} in {report.seconds:.2f} s ({report.rows / max(report.seconds, 1e-9):,.0f} "
        "rows/s)",
        err=True,
    )
