"""``ValueSpec``: how a function declares one piece of its state.

State is declared in code, never in YAML (StateFun 3.x). The runtime learns the specs through
the missing-state handshake and then ships the values with every invocation.
"""

from __future__ import annotations

from datetime import timedelta
from keyword import iskeyword
from typing import final

from pystatefun.errors import ConfigurationError
from pystatefun.sdk._types import Type

__all__ = ["ValueSpec"]

_NAME_RULE = (
    "a state name must be a lowercase Python identifier that is not a keyword: lowercase "
    "letters, digits and '_', not starting with a digit or '__' (e.g. 'seen_count'), "
    "because it becomes an attribute of context.storage"
)


def _millis(duration: timedelta, what: str) -> int:
    if not isinstance(duration, timedelta):
        raise ConfigurationError(f"{what} must be a datetime.timedelta, got {duration!r}")
    millis = int(duration.total_seconds() * 1000.0)
    if millis <= 0:
        raise ConfigurationError(f"{what} must be at least 1 ms, got {duration!r}")
    return millis


@final
class ValueSpec:
    """A named, typed state value, optionally expiring after a call or after a write.

    ``expire_after_call``: the value is dropped when the address has not been invoked for that
    long. ``expire_after_write``: dropped when it has not been written for that long. At most one
    of them may be set.
    """

    __slots__ = ("after_call", "after_write", "duration", "name", "type")

    def __init__(
        self,
        name: str,
        type: Type,  # noqa: A002 - upstream's parameter name; porting is an import change
        expire_after_call: timedelta | None = None,
        expire_after_write: timedelta | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"ValueSpec name is missing; {_NAME_RULE}")
        if not name.isidentifier() or iskeyword(name) or not name.islower() or name[:2] == "__":
            raise ConfigurationError(f"invalid ValueSpec name {name!r}: {_NAME_RULE}")
        if not isinstance(type, Type):
            raise ConfigurationError(
                f"ValueSpec {name!r}: type must be a pystatefun.sdk Type (e.g. IntType or "
                f"make_json_type('com.example/User')), got {type!r}"
            )
        if expire_after_call and expire_after_write:
            raise ConfigurationError(
                f"ValueSpec {name!r}: set expire_after_call or expire_after_write, not both"
            )
        self.name = name
        self.type = type
        self.after_call = bool(expire_after_call)
        self.after_write = bool(expire_after_write)
        if expire_after_call:
            self.duration = _millis(expire_after_call, f"ValueSpec {name!r} expire_after_call")
        elif expire_after_write:
            self.duration = _millis(expire_after_write, f"ValueSpec {name!r} expire_after_write")
        else:
            self.duration = 0

    def __repr__(self) -> str:
        ttl = ""
        if self.after_call:
            ttl = f", expire_after_call={self.duration}ms"
        elif self.after_write:
            ttl = f", expire_after_write={self.duration}ms"
        return f"ValueSpec({self.name!r}, {self.type.typename!r}{ttl})"
