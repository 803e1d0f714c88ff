"""StateFun's playground greeter (apache/flink-statefun-playground, ``python/greeter``), written
for the official Python SDK, ``apache-flink-statefun`` 3.3.0, and served the way the playground
serves it: an aiohttp application that hands every ``POST /statefun`` body to
``RequestReplyHandler.handle_async``.

The contract it keeps with upstream's module and README:

- ``example/person`` (id: the person's name) receives ``example/GreetRequest`` messages, JSON
  ``{"name": "Bob"}``. It counts the visits in its state ``visits`` (``IntType``), adds the count
  to the request (``{"name": "Bob", "visits": 2}``) and sends it, still an
  ``example/GreetRequest``, to ``example/greeter`` with the id ``name``.
- ``example/greeter`` turns that into a greeting, after pretending to think about it for a
  second, and writes it to the playground egress ``io.statefun.playground/egress`` as an
  ``io.statefun.playground/EgressRecord`` (``{"topic": "greetings", "payload": <greeting>}``).

Run it (needs ``apache-flink-statefun`` and ``aiohttp``)::

    python functions.py [PORT]      # or PORT=8000 python functions.py; 8000 by default

It listens on 127.0.0.1 only (upstream's container listens on every interface) and prints
aiohttp's ``======== Running on http://127.0.0.1:PORT ========`` once it accepts connections.
"""

import asyncio
import os
import sys

from aiohttp import web
from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)

GREET_REQUEST_TYPE = make_json_type(typename="example/GreetRequest")
EGRESS_RECORD_TYPE = make_json_type(typename="io.statefun.playground/EgressRecord")
PLAYGROUND_EGRESS = "io.statefun.playground/egress"
GREETINGS_TOPIC = "greetings"
THINKING_SECONDS = 1  # upstream's greeter awaits a second before each greeting

functions = StatefulFunctions()


@functions.bind(typename="example/person", specs=[ValueSpec(name="visits", type=IntType)])
async def person(context: Context, message: Message) -> None:
    """One more visit of this person: count it, then ask the greeter for a greeting."""
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    request = message.as_type(GREET_REQUEST_TYPE)
    request["visits"] = visits
    context.send(
        message_builder(
            target_typename="example/greeter",
            target_id=request["name"],
            value=request,
            value_type=GREET_REQUEST_TYPE,
        )
    )


@functions.bind(typename="example/greeter")
async def greeter(context: Context, message: Message) -> None:
    """Greet the person by name, according to how often they came, on the egress."""
    request = message.as_type(GREET_REQUEST_TYPE)
    greeting = await compose_greeting(request["name"], request["visits"])
    record = {"topic": GREETINGS_TOPIC, "payload": greeting}
    context.send_egress(
        egress_message_builder(
            target_typename=PLAYGROUND_EGRESS, value=record, value_type=EGRESS_RECORD_TYPE
        )
    )


async def compose_greeting(name: str, visits: int) -> str:
    """The greeting for a person's ``visits``-th visit (1 for the first)."""
    if visits == 1:
        greeting = f"Welcome {name}"
    elif visits == 2:
        greeting = f"Nice to see you again {name}"
    elif visits == 3:
        greeting = f"Third time is a charm {name}"
    else:
        greeting = f"Nice to see you at the {visits}-nth time {name}!"
    await asyncio.sleep(THINKING_SECONDS)
    return greeting


handler = RequestReplyHandler(functions)


async def handle(request: web.Request) -> web.Response:
    """One request-reply round: a ``ToFunction`` in, a ``FromFunction`` out."""
    reply = await handler.handle_async(await request.read())
    return web.Response(body=reply, content_type="application/octet-stream")


app = web.Application()
app.add_routes([web.post("/statefun", handle)])


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))
    web.run_app(app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
