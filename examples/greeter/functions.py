"""The greeter application: two stateful functions written with pystatefun.sdk.

``example/user`` remembers how often each user visited, answers its caller with the count (an
ingress request in request-reply mode waits for it), and forwards a profile to
``example/greeter``, which turns it into a greeting on the playground egress and, for
returning visitors, schedules a follow-up "welcome back" after a delay.

Serve it: ``pystatefun serve examples/greeter/functions.py:functions --port 8000``
"""

from datetime import timedelta

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)

PROFILE = make_json_type("example/UserProfile")
EGRESS_RECORD = make_json_type("io.statefun.playground/EgressRecord")
PLAYGROUND_EGRESS = "io.statefun.playground/egress"

functions = StatefulFunctions()


@functions.bind(
    "example/user",
    specs=[
        ValueSpec("visits", IntType),
        ValueSpec("last_seen_name", StringType, expire_after_write=timedelta(days=30)),
    ],
)
def user(context: Context, message: Message) -> None:
    """Count the visits of the user ``context.address.id`` and tell the greeter."""
    name = message.as_string() or context.address.id
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    context.storage.last_seen_name = name
    profile = {"name": name, "visits": visits}
    context.send(
        message_builder("example/greeter", context.address.id, value=profile, value_type=PROFILE)
    )
    if context.caller is not None:  # a request-reply ingress request waits for an answer
        context.send(message_builder(context.caller.typename, context.caller.id, int_value=visits))


@functions.bind("example/greeter")
def greeter(context: Context, message: Message) -> None:
    """Greet; a returning visitor also gets a delayed follow-up, cancellable by token."""
    if message.is_string():  # the delayed follow-up, sent to ourselves
        _emit(context, message.as_string() or "")
        return
    profile = message.as_type(PROFILE)
    name, visits = profile["name"], profile["visits"]
    if visits == 1:
        _emit(context, f"Hello {name}! Nice to meet you.")
        return
    _emit(context, f"Hello {name}! I have seen you {visits} times.")
    token = f"follow-up-{context.address.id}"
    context.cancel_delayed_message(token)  # only the latest visit's follow-up survives
    follow_up = message_builder(
        "example/greeter", context.address.id, str_value=f"Welcome back for good, {name}."
    )
    context.send_after(timedelta(seconds=1), follow_up, cancellation_token=token)


def _emit(context: Context, text: str) -> None:
    record = {"topic": "greetings", "payload": text}
    context.send_egress(egress_message_builder(PLAYGROUND_EGRESS, record, EGRESS_RECORD))
