"""Functions for bench/database_round_trip.py: visits counted per user, and each visit
forwarded to an audit function whose endpoint is down, so its messages wait in the inbox."""

from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, message_builder

functions = StatefulFunctions()


@functions.bind("example/user", specs=[ValueSpec("visits", IntType)])
def user(context, message):  # type: ignore[no-untyped-def]
    context.storage.visits = (context.storage.visits or 0) + 1
    context.send(message_builder("audit/log", context.address.id, str_value="visit"))
