"""``Context``: what a function can see and do during one invocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import final

from pystatefun.errors import ConfigurationError
from pystatefun.sdk._address import SdkAddress
from pystatefun.sdk._message import EgressMessage, Message
from pystatefun.sdk._storage import AddressScopedStorage

__all__ = ["Context"]


@final
@dataclass(frozen=True, slots=True)
class DelayedSend:
    """A ``send_after`` (``message`` set) or a cancellation (``message`` None), in call order."""

    delay_ms: int
    message: Message | None
    cancellation_token: str


@final
class Context:
    """The invocation context: the address being invoked, its caller and storage, and the
    effects the function produces. Effects are collected and returned to the runtime when the
    batch ends; the runtime applies them atomically with the state changes.
    """

    __slots__ = ("_address", "_caller", "_delayed", "_egress", "_outgoing", "_storage")

    def __init__(self, address: SdkAddress, storage: AddressScopedStorage) -> None:
        self._address = address
        self._storage = storage
        self._caller: SdkAddress | None = None
        self._outgoing: list[Message] = []
        self._delayed: list[DelayedSend] = []
        self._egress: list[EgressMessage] = []

    @property
    def address(self) -> SdkAddress:
        """The address of the function instance being invoked."""
        return self._address

    @property
    def caller(self) -> SdkAddress | None:
        """The sender of the current message, or ``None`` when it came from an ingress."""
        return self._caller

    @property
    def storage(self) -> AddressScopedStorage:
        """This address's declared state, as attributes."""
        return self._storage

    def send(self, message: Message) -> None:
        """Send ``message`` to another function (delivered after this batch commits)."""
        if not isinstance(message, Message):
            raise ConfigurationError(
                f"send() takes a Message (see message_builder), got {type(message).__name__}"
            )
        self._outgoing.append(message)

    def send_after(
        self, duration: timedelta, message: Message, cancellation_token: str = ""
    ) -> None:
        """Send ``message`` after ``duration``. A non-empty ``cancellation_token`` lets this
        address cancel it later with ``cancel_delayed_message``; tokens are scoped to the
        sending address and must be unique among its pending delayed messages."""
        if not isinstance(duration, timedelta):
            raise ConfigurationError(f"send_after() takes a timedelta, got {duration!r}")
        if duration < timedelta(0):
            raise ConfigurationError(f"send_after() needs a non-negative delay, got {duration}")
        if not isinstance(message, Message):
            raise ConfigurationError(
                f"send_after() takes a Message (see message_builder), got {type(message).__name__}"
            )
        if not isinstance(cancellation_token, str):
            raise ConfigurationError(
                f"cancellation_token must be a str, got {type(cancellation_token).__name__}"
            )
        delay_ms = int(duration.total_seconds() * 1000.0)
        self._delayed.append(DelayedSend(delay_ms, message, cancellation_token))

    def cancel_delayed_message(self, cancellation_token: str) -> None:
        """Cancel this address's pending delayed message with that token. Best effort: a message
        already delivered (or an unknown token) is left alone."""
        if not isinstance(cancellation_token, str) or not cancellation_token:
            raise ConfigurationError(
                "cancel_delayed_message() needs the non-empty token given to send_after()"
            )
        self._delayed.append(DelayedSend(0, None, cancellation_token))

    def send_egress(self, message: EgressMessage) -> None:
        """Emit ``message`` to its egress (published after this batch commits)."""
        if not isinstance(message, EgressMessage):
            raise ConfigurationError(
                "send_egress() takes an EgressMessage (see kafka_egress_message, "
                f"egress_message_builder), got {type(message).__name__}"
            )
        self._egress.append(message)
