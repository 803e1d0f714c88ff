"""How ``pystatefun`` logs: one line per event on stderr, as text or as JSON (``--log-format``).

A JSON line holds ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message`` and,
when the event is about an address, ``address`` (``namespace/type/id``), so a log pipeline can
filter by it; an exception's traceback is ``error``. The address is found among the record's
arguments (every runtime line about an address passes it as one) or given as
``extra={"address": ...}``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, final

from pystatefun.types import Address

__all__ = ["AddressField", "JsonLines", "configure_logging"]

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@final
class AddressField(logging.Filter):
    """Gives a record about an address its ``address`` attribute."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "address", None) is None:
            args = record.args if isinstance(record.args, tuple) else ()
            found = next((arg for arg in args if isinstance(arg, Address)), None)
            record.address = None if found is None else str(found)
        return True


@final
class JsonLines(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        address = getattr(record, "address", None)
        if address is not None:
            line["address"] = str(address)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, log_format: Literal["text", "json"], text: str = _TEXT) -> None:
    """Log at ``level`` and above to stderr, as ``log_format`` (``text``: the ``text``
    pattern)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(AddressField())
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(text))
    logging.basicConfig(level=level, handlers=[handler], force=True)
