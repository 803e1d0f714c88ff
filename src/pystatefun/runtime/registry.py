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

__all__ = ["RegisteredState", "StateRegistry"]

_UNSET_TYPENAME = "io.statefun.types/unset"  # what upstream registers for an empty typename


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
                known[spec.state_name] = RegisteredState(
                    spec.state_name,
                    typename,
                    int(spec.expiration_spec.mode),
                    int(spec.expiration_spec.expire_after_millis),
                )
            elif registered.typename != typename:
                raise TerminalError(
                    f"{where}: state {spec.state_name!r} is registered with type "
                    f"{registered.typename!r}, and the function now declares {typename!r}; a "
                    "state's type cannot change. Declare the new type under a new state name."
                )
