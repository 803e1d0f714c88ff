"""How ``FunctionHarness`` stands in for a module: every function type is routed to the SDK's
handler in-process, and every egress record is accepted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import final

from pystatefun.errors import InvocationError, TerminalError
from pystatefun.io.playground import PLAYGROUND_EGRESS, PlaygroundEgressServer
from pystatefun.module import HttpEndpoint, Location, Transport
from pystatefun.protocol import TypedValue
from pystatefun.runtime.batches import payload_of
from pystatefun.runtime.routes import Route
from pystatefun.store import EgressOut
from pystatefun.types import Address

__all__ = ["ENDPOINT", "AnyEgress", "InProcessRoutes", "StopError"]

#: The one endpoint every type is "served" at: the harness's invoker answers in-process.
ENDPOINT = HttpEndpoint(
    functions="*/*",
    url_path_template="in-process://FunctionHarness",
    max_num_batch_requests=0,  # unbounded: a batch is every waiting message, as in the SDKs
    transport=Transport(
        kind=Transport.ASYNC,
        call_timeout_s=sys.float_info.max,
        connect_timeout_s=sys.float_info.max,
        read_timeout_s=None,
        write_timeout_s=None,
        pool_ttl_s=0.0,
        pool_size=1,
        payload_max_bytes=sys.maxsize,  # no HTTP here: nothing to cut batches to
    ),
    location=Location(Path("<FunctionHarness>"), 1, 1),
)


@final
class AnyEgress:
    """Accepts every egress; checks playground records as the playground egress does, whatever
    the topic (a test has no module YAML declaring topics)."""

    def route(self, egress: str, value: TypedValue, where: str) -> EgressOut:
        if egress != PLAYGROUND_EGRESS:
            return EgressOut(egress, "", payload_of(value))
        try:
            topic = json.loads(value.value).get("topic")
        except (ValueError, AttributeError):
            topic = None  # invalid: the egress raises the runtime's error for it
        topics = (topic,) if isinstance(topic, str) else ()
        return PlaygroundEgressServer(host="", port=0, topics=topics).route(value, where)


@final
class InProcessRoutes:
    """Every function type has a route to the in-process handler; those the harness does not
    bind are consumed there without an invocation (the outbox recorded them)."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def route(self, address: Address) -> Route:
        typename = address.typename
        route = self._routes.get(typename)
        if route is None:
            url = ENDPOINT.url_path_template
            route = self._routes[typename] = Route(typename, ENDPOINT, 0, url, None, ENDPOINT)
        return route

    def unserved(self, address: Address) -> TerminalError:
        raise AssertionError(f"{address}: every type has a route here")


class StopError(InvocationError):
    """The harness stops its run: a message loop passed ``max_steps``."""
