"""Why a batch could not be processed, and whether trying again can help.

``RetryableError``s (an endpoint down, slow, answering 5xx or bytes that do not decode) park
the address and try again with backoff, up to the dead-letter policy. ``TerminalError``s (a
state whose type changed, an unknown egress, an invalid record) cannot succeed on retry and send
the batch to the dead letters at once. Either way, other addresses keep flowing.
"""

from __future__ import annotations

from typing import final

__all__ = ["InvocationError", "RetryableError", "StoppingError", "TerminalError"]


class InvocationError(Exception):
    """A batch failed; ``str()`` says what happened, to which address, and what to check."""

    code = "PSF-RT0000"

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.code}]"


@final
class RetryableError(InvocationError):
    """Might succeed later: the endpoint or the network failed."""

    code = "PSF-RT0001"


@final
class TerminalError(InvocationError):
    """Cannot succeed as it is: the function's reply or the module contradicts stored data."""

    code = "PSF-RT0002"


@final
class StoppingError(Exception):
    """The runtime is shutting down and takes no new messages; the client should retry later."""
