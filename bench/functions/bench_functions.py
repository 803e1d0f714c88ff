"""The benchmark's functions, written once against the StateFun Python SDK API.

``build(sf)`` takes either ``pystatefun.sdk`` or the official ``statefun`` 3.3.0 module and uses
only the API the two share, so both SDKs serve the very same logic. It is the logic
``bench/harness/peer.py`` describes, under namespace ``bench``:

- ``bench/counter`` (state ``count``, int): an ``io.statefun.types/int`` message adds n to the
  count and replies the new count to ``context.caller``; a ``bench/get`` message (any body)
  replies the count without changing it. Messages without a caller (one-way) get no reply.
- ``bench/chain-a`` -> ``bench/chain-b`` -> ``bench/chain-c`` (each: state ``count``, int): each
  adds 1 to its own count and passes a ``bench/hop`` message on to the next hop (same id); the
  hop carries the address to answer as a string ``namespace/type/id``. C answers its count there.
- ``bench/ticker`` (state ``lateness``, a JSON list): ``bench/schedule`` sends itself, 1 s later,
  a ``bench/tick`` carrying the due time (unix ms); a tick appends its lateness (now - due, ms);
  ``bench/lateness`` answers the list as a JSON string.

Serve it with our SDK: ``pystatefun serve bench/functions/bench_functions.py:FUNCTIONS``
(``FUNCTIONS`` is built with ``pystatefun.sdk`` on first access, so this file imports only the
standard library and the official SDK's virtualenv can load it too); with the official SDK:
``bench/functions/serve_official.py``.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

NAMESPACE = "bench"
COUNTER = "bench/counter"
CHAIN = ("bench/chain-a", "bench/chain-b", "bench/chain-c")
TICKER = "bench/ticker"
GET = "bench/get"
HOP = "bench/hop"
SCHEDULE = "bench/schedule"
TICK = "bench/tick"
LATENESS = "bench/lateness"
DELAY = timedelta(seconds=1)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def build(sf: Any) -> Any:
    """The benchmark's ``StatefulFunctions``, built with the SDK module ``sf``."""
    functions = sf.StatefulFunctions()
    _bind_counter(sf, functions)
    _bind_chain(sf, functions)
    _bind_ticker(sf, functions)
    return functions


def _reply(sf: Any, context: Any, count: int) -> None:
    caller = context.caller
    if caller is not None:
        context.send(
            sf.message_builder(
                target_typename=caller.typename, target_id=caller.id, int_value=count
            )
        )


def _bind_counter(sf: Any, functions: Any) -> None:
    @functions.bind(COUNTER, specs=[sf.ValueSpec("count", sf.IntType)])
    def counter(context: Any, message: Any) -> None:
        count = context.storage.count or 0
        if message.is_int():
            count += message.as_int()
            context.storage.count = count
        elif message.value_typename() != GET:
            raise TypeError(f"counter: unexpected message type {message.value_typename()}")
        _reply(sf, context, count)


def _bind_chain(sf: Any, functions: Any) -> None:
    hop_type = sf.simple_type(HOP, serialize_fn=_utf8, deserialize_fn=_text)

    def bump(context: Any) -> int:
        count = (context.storage.count or 0) + 1
        context.storage.count = count
        return count

    def forward(context: Any, target: str, reply_to: str) -> None:
        context.send(
            sf.message_builder(target, context.address.id, value=reply_to, value_type=hop_type)
        )

    @functions.bind(CHAIN[0], specs=[sf.ValueSpec("count", sf.IntType)])
    def chain_a(context: Any, message: Any) -> None:
        bump(context)
        caller = context.caller
        forward(context, CHAIN[1], f"{caller.typename}/{caller.id}" if caller is not None else "")

    @functions.bind(CHAIN[1], specs=[sf.ValueSpec("count", sf.IntType)])
    def chain_b(context: Any, message: Any) -> None:
        bump(context)
        forward(context, CHAIN[2], message.as_type(hop_type))

    @functions.bind(CHAIN[2], specs=[sf.ValueSpec("count", sf.IntType)])
    def chain_c(context: Any, message: Any) -> None:
        count = bump(context)
        reply_to = message.as_type(hop_type)
        if reply_to:
            namespace, kind, address_id = reply_to.split("/", 2)
            context.send(sf.message_builder(f"{namespace}/{kind}", address_id, int_value=count))


def _bind_ticker(sf: Any, functions: Any) -> None:
    tick_type = sf.make_json_type(TICK)
    lateness_type = sf.make_json_type("bench/lateness-list")

    @functions.bind(TICKER, specs=[sf.ValueSpec("lateness", lateness_type)])
    def ticker(context: Any, message: Any) -> None:
        typename = message.value_typename()
        if typename == SCHEDULE:
            due_ms = int(time.time() * 1000) + 1000
            tick = sf.message_builder(
                TICKER, context.address.id, value=due_ms, value_type=tick_type
            )
            context.send_after(DELAY, tick)
        elif typename == TICK:
            late_ms = time.time() * 1000 - message.as_type(tick_type)
            context.storage.lateness = [*(context.storage.lateness or []), late_ms]
        elif typename == LATENESS:
            caller = context.caller
            if caller is not None:
                listed = json.dumps(context.storage.lateness or [])
                context.send(sf.message_builder(caller.typename, caller.id, str_value=listed))
        else:
            raise TypeError(f"ticker: unexpected message type {typename}")


def __getattr__(name: str) -> Any:
    """``FUNCTIONS``: built with ``pystatefun.sdk`` on first access (for ``pystatefun serve``)."""
    if name == "FUNCTIONS":
        import pystatefun.sdk as sf

        built = build(sf)
        globals()["FUNCTIONS"] = built
        return built
    raise AttributeError(name)
