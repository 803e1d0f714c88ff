"""Small SDK functions the runtime's in-process tests share."""

from __future__ import annotations

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    ValueSpec,
    egress_message_builder,
    make_json_type,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")


def emit(context: Context, text: str, topic: str = "out") -> None:
    """A playground egress record ``text`` on ``topic``."""
    record = {"topic": topic, "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))


def counting(*typenames: str) -> StatefulFunctions:
    """Functions that count their messages and emit ``id:message:count``."""
    functions = StatefulFunctions()

    def count(context: Context, message: Message) -> None:
        context.storage.n = (context.storage.n or 0) + 1
        emit(context, f"{context.address.id}:{message.as_string()}:{context.storage.n}")

    for typename in typenames:
        functions.register(typename, count, [ValueSpec("n", IntType)])
    return functions
