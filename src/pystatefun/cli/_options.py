"""Options several commands share, so they read and default the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["DEFAULT_DATA_DIR", "data_dir_option"]

#: Where `pystatefun run` keeps its data when no --data-dir is given.
DEFAULT_DATA_DIR = Path("pystatefun-data")


def data_dir_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--data-dir DIR``, by default ``./pystatefun-data``, explained by ``help_text``."""
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help=help_text,
    )
