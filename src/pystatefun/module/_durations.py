"""Durations as module YAML writes them: Flink's ``TimeUtils.parseDuration`` format.

StateFun reads every timeout with Flink's parser, so ``2min``, ``2 min``, ``120s`` and
``120000`` (no unit: milliseconds) all mean two minutes, and existing modules load unchanged.
We keep durations as whole milliseconds: Flink also takes ``ns`` and ``µs``, but a timeout below
a millisecond cannot be honoured by an event loop, so those units are refused with a clear
message rather than silently rounded.
"""

from __future__ import annotations

import re

__all__ = ["DURATION_FORMAT", "format_duration", "parse_duration_ms"]

DURATION_FORMAT = (
    "use a number with a unit like '2 min', '30s', '500ms' (units: ms, s, min, h, d and their "
    "long forms; a bare number is milliseconds)"
)

_MILLIS_PER_UNIT: dict[str, int] = {}
for _millis, _labels in (
    (1, ("ms", "milli", "millis", "millisecond", "milliseconds")),
    (1000, ("s", "sec", "secs", "second", "seconds")),
    (60_000, ("m", "min", "mins", "minute", "minutes")),
    (3_600_000, ("h", "hour", "hours")),
    (86_400_000, ("d", "day", "days")),
):
    _MILLIS_PER_UNIT.update(dict.fromkeys(_labels, _millis))
_SUB_MILLI_UNITS = {"ns", "nano", "nanos", "nanosecond", "nanoseconds"} | {
    "µs", "us", "micro", "micros", "microsecond", "microseconds"
}  # fmt: skip
# Flink's parser: leading digits are the number, the (trimmed, case-insensitive) rest the unit.
_DURATION = re.compile(r"\s*(\d+)\s*(\S*)\s*", re.ASCII)
# Flink stores a Duration in a Java long of nanoseconds at most; beyond that it overflows.
_MILLIS_MAX = (2**63 - 1) // 1_000_000


def parse_duration_ms(value: object) -> int:
    """Milliseconds of a YAML duration: a string in Flink's format, or an integer of ms.

    Raises ``ValueError`` whose message quotes the value and says the accepted format.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a duration; {DURATION_FORMAT}")
    if isinstance(value, int):
        millis = value
    else:
        match = _DURATION.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if unit in _SUB_MILLI_UNITS:
            raise ValueError(
                f"{value!r} is below millisecond precision; durations are whole milliseconds, "
                f"so {DURATION_FORMAT}"
            )
        if match is None or (unit and unit not in _MILLIS_PER_UNIT):
            raise ValueError(f"{value!r} is not a duration; {DURATION_FORMAT}")
        millis = int(match.group(1)) * _MILLIS_PER_UNIT.get(unit, 1)
    if millis < 0:
        raise ValueError(f"{value!r} is negative; a duration is at least 0 ms")
    if millis > _MILLIS_MAX:
        raise ValueError(f"{value!r} is too long; a duration is at most {_MILLIS_MAX} ms")
    return millis


def format_duration(millis: int) -> str:
    """The shortest exact spelling of ``millis`` that ``parse_duration_ms`` reads back:
    ``120000`` becomes ``'2min'``, ``1500`` becomes ``'1500ms'``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
