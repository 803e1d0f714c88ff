"""Which endpoint serves a function type, and its limits: looked up once per type.

The module never changes while the runtime runs, so the answer for a type is kept. Types come
from clients (any ``namespace/*`` pattern serves unboundedly many), so the cache is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, final

from pystatefun.errors import TerminalError
from pystatefun.module import Endpoint, HttpEndpoint, Module
from pystatefun.runtime.embedded import EmbeddedFunctions
from pystatefun.types import Address

__all__ = ["Route", "RouteTable", "Routes"]

_ROUTES_MAX = 10_000


@final
@dataclass(frozen=True, slots=True)
class Route:
    """A function type's endpoint (None: no endpoint serves it) and its limits.

    ``embedded`` runs the type's batches when its endpoint is embedded; ``remote`` is the HTTP
    endpoint that serves it otherwise (co-located servers are called through one too), and
    ``url`` is where it is called (for an embedded one, a description for logs).
    """

    typename: str
    endpoint: Endpoint | None
    max_batch: int  # maxNumBatchRequests; 0 when unbounded
    url: str
    embedded: EmbeddedFunctions | None = None
    remote: HttpEndpoint | None = None


class RouteTable(Protocol):
    """Where the dispatcher finds how to invoke an address."""

    def route(self, address: Address) -> Route: ...

    def unserved(self, address: Address) -> TerminalError:
        """The error for a message to a function type that no endpoint serves."""
        ...


@final
class Routes:
    """The routes of a module's endpoints."""

    def __init__(
        self, module: Module, embedded: Mapping[int, EmbeddedFunctions] | None = None
    ) -> None:
        self._module = module
        self._embedded = embedded or {}  # by id() of the endpoint
        self._routes: dict[tuple[str, str], Route] = {}

    def route(self, address: Address) -> Route:
        key = (address.namespace, address.type)
        route = self._routes.get(key)
        if route is None:
            if len(self._routes) >= _ROUTES_MAX:
                self._routes.clear()
            typename = address.typename
            endpoint = self._module.endpoint_for(typename)
            limit = endpoint.max_num_batch_requests if endpoint is not None else 0
            embedded = self._embedded.get(id(endpoint))
            remote = endpoint if isinstance(endpoint, HttpEndpoint) else None
            if embedded is not None:
                url = embedded.where
            else:
                url = remote.url_for(typename) if remote is not None else ""
            route = Route(typename, endpoint, max(limit, 0), url, embedded, remote)
            self._routes[key] = route
        return route

    def unserved(self, address: Address) -> TerminalError:
        """The error for a message to a function type that no endpoint serves."""
        served = ", ".join(e.functions for e in self._module.endpoints) or "none"
        return TerminalError(
            f"{address}: no endpoint in {self._module.source} serves function type "
            f"{address.typename!r} (endpoints serve: {served})"
        )
