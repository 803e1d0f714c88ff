"""What the web console's API refuses, and with which status: each error carries its HTTP
status and a short ``code``; its text says what happened and what to do."""

from __future__ import annotations

__all__ = ["BadInputError", "ConsoleError", "NotAvailableError"]


class ConsoleError(Exception):
    """A refusal of the console API: ``{"error": str(self), "code": code}`` with ``status``."""

    status = 400
    code = "bad-input"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = self.status if status is None else status
        self.code = self.code if code is None else code


class BadInputError(ConsoleError):
    """A request the API cannot answer as asked (400); the text says what to send."""


class NotAvailableError(ConsoleError):
    """What the console cannot do on this runtime (409); the text says what to use instead."""

    status = 409
    code = "not-available"
