"""``ConnectorServer``: the HTTP server of a connector (the playground's ingress and egress).

It starts with the runtime that the connector hands messages to (a port in use is a coded
error that says what to change), stops within a bound, and counts its answers by HTTP status
(and what its server refused before a handler saw it) for the metrics. Its front door (a
bearer token, TLS) turns away a request without the token before the connector sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from pystatefun.errors import DataDirError
from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer
from pystatefun.http.front_door import FrontDoor
from pystatefun.io.api import RuntimeHandle
from pystatefun.reading import Reading

__all__ = ["ConnectorServer"]

_SHUTDOWN_TIMEOUT_S = 5.0


class ConnectorServer:
    """One HTTP server of a connector, started with the runtime it hands to (subclassed)."""

    def __init__(self, host: str, port: int, limits: HttpLimits, front_door: FrontDoor) -> None:
        self._host, self._port = host, port
        self._limits = limits
        self._door = front_door
        self._server: HttpServer | None = None
        self._runtime: RuntimeHandle | None = None
        self.port = port
        self.ports = (port,) if port else ()
        self._statuses: Counter[int] = Counter()  # answers by HTTP status, for the metrics

    def _answered(self, response: HttpResponse) -> HttpResponse:
        self._statuses[response.status] += 1
        return response

    async def _through_door(
        self, request: HttpRequest, handle: Callable[[HttpRequest], Awaitable[HttpResponse]]
    ) -> HttpResponse:
        """``handle``'s answer, once the request showed the port's token (else 401, and
        ``handle`` never sees it)."""
        refused = self._door.refusal(request)
        return self._answered(refused if refused is not None else await handle(request))

    def _readings(self, role: str, kind: str) -> list[Reading]:
        """Its requests by the status they were answered with, and what its server refused
        before a handler saw it (``HttpServer.statistics``)."""
        label = (role, kind)  # ingress=<kind>, or egress=<kind>
        doc = f"Requests to the HTTP {role}, by the status they were answered with."
        counted = [Reading(f"{role}_requests_total", doc, "counter", count,
                           (label, ("status", str(status))))
                   for status, count in sorted(self._statuses.items())]  # fmt: skip
        server = {} if self._server is None else self._server.statistics()
        doc = f"Connections and requests the HTTP {role} refused before a handler saw them."
        counted += [Reading(f"{role}_refusals_total", doc, "counter", count,
                            (label, ("reason", reason)))
                    for reason, count in server.items()
                    if reason not in ("open", "accepted")]  # fmt: skip
        return counted

    async def _start(self, runtime: RuntimeHandle, server: HttpServer) -> None:
        self._runtime = runtime
        try:
            await server.start(self._host, self._port, ssl_context=self._door.tls)
        except OSError as exc:
            raise DataDirError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}; is another "
                "process using the port? Change `port` in the module, or stop that process."
            ) from exc
        self._server = server
        self.port = server.port

    @property
    def runtime(self) -> RuntimeHandle:
        assert self._runtime is not None, "the connector is not started"
        return self._runtime

    async def stop(self) -> None:
        """Stop listening; requests in progress get ``_SHUTDOWN_TIMEOUT_S`` to finish."""
        if self._server is not None:
            await self._server.stop(_SHUTDOWN_TIMEOUT_S)
            self._server = None

    @property
    def url(self) -> str | None:
        return None if self._server is None else f"{self._door.scheme}://{self._host}:{self.port}"
