"""``Location``: where in a module file a component or field is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import final

from pystatefun.errors import ModuleError

__all__ = ["Location"]


@final
@dataclass(frozen=True, slots=True)
class Location:
    """Where a component or field is written: ``line`` and ``column`` are 1-based."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, reason: str, *, field: str) -> ModuleError:
        """A ``ModuleError`` here, at ``field`` (for what is found wrong after loading, such
        as a connector refusing its settings)."""
        return ModuleError(reason, file=self.file, line=self.line, field=field)
