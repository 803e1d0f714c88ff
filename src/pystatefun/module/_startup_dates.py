"""The ``date`` of a ``startupPosition`` (Kafka's and Kinesis's ingress), in StateFun's pattern
``yyyy-MM-dd HH:mm:ss.SSS Z``, as epoch milliseconds, and back."""

from __future__ import annotations

import datetime
import re

from pystatefun.module._source import FieldPath, SourceDocument

__all__ = ["format_startup_date", "startup_date_ms"]

_DATE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))? ?(Z|[+-]\d{2}:?\d{2})$"
)


def startup_date_ms(document: SourceDocument, raw: str | None, path: FieldPath) -> int:
    """``raw`` as epoch milliseconds; ``ModuleError`` at ``path`` if it is not such a date."""
    match = _DATE.match(raw or "")
    if match is None:
        example = "'2020-02-01 04:15:00.000 +0000' (yyyy-MM-dd HH:mm:ss.SSS Z)"
        raise document.error(path, f"{raw!r} is not a date like {example}")
    day, time, millis, zone = match.groups()
    zone = "+0000" if zone == "Z" else zone.replace(":", "")
    moment = datetime.datetime.strptime(f"{day} {time} {zone}", "%Y-%m-%d %H:%M:%S %z")
    return int(moment.timestamp() * 1000) + int((millis or "0").ljust(3, "0"))


def format_startup_date(date_ms: int) -> str:
    """``date_ms`` in the pattern, in UTC (what ``startup_date_ms`` reads back the same)."""
    moment = datetime.datetime.fromtimestamp(date_ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{date_ms % 1000:03d} +0000"
