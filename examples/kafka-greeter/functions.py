"""The Kafka greeter's function, written for the official Python SDK, ``apache-flink-statefun``
3.3.0, and served as upstream's examples serve theirs: an aiohttp application that hands every
``POST /statefun`` body to ``RequestReplyHandler.handle_async``.

``example/greeter`` (id: a person's name) receives the name from the Kafka topic ``names``: the
module's ingress routes each record to the greeter whose id is the record's key, and passes its
value on as it is, typed ``example/Name``, which this file declares as plain UTF-8 text. (A
primitive ``valueType`` such as ``io.statefun.types/string`` would need the SDK's serialized
wrapper in the record, which plain Kafka producers do not write.)

It counts the visits in its state ``visits`` (``IntType``) and sends the
greeting to the Kafka egress ``example/greets``: topic ``greetings``, key the name, value the
greeting as UTF-8 text.

Run it (needs ``apache-flink-statefun`` and ``aiohttp``)::

    python functions.py [PORT]      # or PORT=8000 python functions.py; 8000 by default

It listens on 127.0.0.1 only and prints aiohttp's ``======== Running on
http://127.0.0.1:PORT ========`` once it accepts connections.
"""

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
    kafka_egress_message,
    simple_type,
)

NAME_TYPE = simple_type(
    typename="example/Name", serialize_fn=str.encode, deserialize_fn=bytes.decode
)
GREETS_EGRESS = "example/greets"
GREETINGS_TOPIC = "greetings"

functions = StatefulFunctions()


@functions.bind(typename="example/greeter", specs=[ValueSpec(name="visits", type=IntType)])
async def greeter(context: Context, message: Message) -> None:
    """One more visit of this person: count it, and greet them on the ``greetings`` topic."""
    name = message.as_type(NAME_TYPE)
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    context.send_egress(
        kafka_egress_message(
            typename=GREETS_EGRESS,
            topic=GREETINGS_TOPIC,
            key=context.address.id,
            value=greeting(name, visits),
        )
    )


def greeting(name: str, visits: int) -> str:
    """The greeting for a person's ``visits``-th visit (1 for the first)."""
    if visits == 1:
        return f"Hello {name}! Welcome."
    if visits == 2:
        return f"Hello again {name}!"
    return f"Hello {name}, this is visit number {visits}."


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
