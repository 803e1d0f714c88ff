"""The remote states each function type has declared, learnt through the handshake.

As in StateFun, the runtime starts knowing no state; a function's ``IncompleteInvocationContext``
registers the missing ones. A state's type cannot change once registered, and a stored value
must have its registered type: either mismatch is a ``TerminalError`` failure naming the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from pystatefun.errors import TerminalError
from pystatefun.protocol import FromFunction
from pystatefun.store import ExpireMode

__all__ = ["LONGEST_MS", "RegisteredState", "StateRegistry"]

_UNSET_TYPENAME = "io.statefun.types/unset"  # what upstream registers for an empty typename
_MODES = (ExpireMode.NONE, ExpireMode.AFTER_WRITE, ExpireMode.AFTER_INVOKE)

#: The longest state TTL or message delay a function may ask for, about 146 million years:
#: added to any clock reading, it still fits the store's signed 64-bit millisecond times. The
#: wire allows up to 2**63 - 1, which would overflow and fail the store's commit.
LONGEST_MS = 2**62


@final
@dataclass(frozen=True, slots=True)
class RegisteredState:
    name: str
    typename: str
    expire_mode: int
    expire_after_ms: int


@final
class StateRegistry:
    """Function type -> its registered states, in registration order."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, RegisteredState]] = {}

    def states(self, function_type: str) -> dict[str, RegisteredState]:
        return self._states.get(function_type, {})

    def register(
        self,
        function_type: str,
        where: str,
        missing: list[FromFunction.PersistedValueSpec],
    ) -> None:
        """Register the specs a function asked for; refuse a type change of a known state."""
        known = self._states.setdefault(function_type, {})
        for spec in missing:
            typename = spec.type_typename or _UNSET_TYPENAME
            registered = known.get(spec.state_name)
            if registered is None:
                mode, after_ms = _expiration(spec, where)
                known[spec.state_name] = RegisteredState(spec.state_name, typename, mode, after_ms)
            elif registered.typename != typename:
                raise TerminalError(
                    f"{where}: state {spec.state_name!r} is registered with type "
                    f"{registered.typename!r}, and the function now declares {typename!r}; a "
                    "state's type cannot change. Declare the new type under a new state name."
                )


def _expiration(spec: FromFunction.PersistedValueSpec, where: str) -> tuple[int, int]:
    """A declared TTL the runtime can keep: a known mode, and a duration the store can add to
    a time; anything else is a function (or SDK) bug that retrying cannot fix."""
    mode = int(spec.expiration_spec.mode)
    after_ms = int(spec.expiration_spec.expire_after_millis)
    if mode not in _MODES:
        raise TerminalError(
            f"{where}: state {spec.state_name!r} declares expiration mode {mode}, which StateFun "
            "does not have (0: none, 1: after write, 2: after invoke)"
        )
    if mode != ExpireMode.NONE and not 0 <= after_ms <= LONGEST_MS:
        raise TerminalError(
            f"{where}: state {spec.state_name!r} declares a TTL of {after_ms} ms; a TTL is "
            f"0 to {LONGEST_MS} ms"
        )
    return mode, after_ms
