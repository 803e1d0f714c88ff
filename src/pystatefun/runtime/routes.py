"""Which endpoint serves a function type, and its limits: looked up once per type.

The module never changes while the runtime runs, so the answer for a type is kept. Types come
from clients (any ``namespace/*`` pattern serves unboundedly many), so the cache is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

from pystatefun.types import Address

__all__ = ["Route", "Routes"]

_ROUTES_MAX = 10_000


@final
@dataclass(frozen=True, slots=True)
class Route:
    """A function type's endpoint (None: no endpoint serves it) and its limits."""

    typename: str
    endpoint: Any
    max_batch: int  # maxNumBatchRequests; 0 when unbounded
    url: str


@final
class Routes:
    def __init__(self, module: Any) -> None:
        self._module = module
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
            url = endpoint.url_for(typename) if endpoint is not None else ""
            route = self._routes[key] = Route(typename, endpoint, max(limit, 0), url)
        return route
