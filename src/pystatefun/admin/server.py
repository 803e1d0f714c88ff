"""``AdminServer``: the admin port of one runtime, embedded or a cluster worker.

- ``GET /health``: 200 while the process runs and its event loop answers (a liveness probe).
- ``GET /ready``: 200 once the runtime has recovered and serves; 503 before (recovering, a
  cluster worker joining), while it stops, and after it failed, with the reason in the body
  (a readiness probe: take the instance out of a load balancer).
- ``GET /metrics``: the Prometheus text format (``exposition``), taken when scraped; with an
  admin token (``front_door``), only for requests that show it (Prometheus sends bearer
  tokens). The probes answer anyone.
- ``GET /`` (or ``/console``): the web console, a static page (``console_page``) that holds no
  data and so answers anyone; everything it shows comes from ``/api/...`` (``console_api``),
  which needs the admin token like ``/metrics``.

It listens on 127.0.0.1 unless told otherwise, and it starts before the runtime does, so a
probe hears "recovering" rather than nothing while a large data dir opens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, final

from pystatefun.admin.console_api import ConsoleApi, refusal
from pystatefun.admin.console_page import PAGE_PATHS, page
from pystatefun.admin.exposition import CONTENT_TYPE, exposition
from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer
from pystatefun.http.front_door import FrontDoor
from pystatefun.runtime.observation import Observation
from pystatefun.store import Contents, StorageEngine

__all__ = ["AdminServer", "Observed"]

_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_PATHS = ("/health", "/ready", "/metrics")
_LISTED = ", ".join((*_PATHS, "/ (the console)", "/api/..."))
_MAX_BODY_BYTES = 64 * 1024  # the console's SQL text and id lists; bounds a confused client
_STOP_S = 2.0


class Observed(Protocol):
    """What the admin port asks of the runtime (``pystatefun.runtime.service.Runtime``)."""

    @property
    def readiness(self) -> tuple[bool, str]: ...

    async def observe(self) -> Observation: ...

    @property
    def engine(self) -> StorageEngine: ...


@final
class AdminServer:
    """Serves ``/health``, ``/ready``, ``/metrics`` and the web console of ``runtime`` on
    ``host:port`` (0: a free port; see ``url`` once started). The console's SQL box reads
    ``data_dir`` (None: it has none, as on a cluster worker); its savepoints go into
    ``savepoint_dir`` (None: it takes none), of ``savepoint_contents`` when given (read in a
    thread: a whole cluster's) or else of the runtime's engine."""

    def __init__(
        self, runtime: Observed, *, host: str = "127.0.0.1", port: int = 0,
        limits: HttpLimits | None = None, front_door: FrontDoor | None = None,
        data_dir: Path | None = None, savepoint_dir: Path | None = None,
        savepoint_contents: Callable[[], Contents] | None = None,
    ) -> None:  # fmt: skip
        self._runtime = runtime
        self._door = front_door or FrontDoor()
        self._api = ConsoleApi(runtime, data_dir=data_dir, savepoint_dir=savepoint_dir,
                               savepoint_contents=savepoint_contents)  # fmt: skip
        self._host, self._port = host, port
        self._server = HttpServer(self._answer, max_body_bytes=_MAX_BODY_BYTES,
                                  limits=limits or HttpLimits())  # fmt: skip
        self._started = False

    async def start(self) -> None:
        """Listen; OSError when the port cannot be bound."""
        await self._server.start(self._host, self._port, ssl_context=self._door.tls)
        self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._server.stop(_STOP_S)

    @property
    def url(self) -> str:
        return f"{self._door.scheme}://{self._server.host}:{self._server.port}"

    async def _console_api(self, request: HttpRequest, path: str) -> HttpResponse:
        refused = self._door.refusal(request)
        if refused is not None:  # the same 401, as JSON for the page
            challenge = {"WWW-Authenticate": refused.headers["WWW-Authenticate"]}
            return refusal(401, "unauthorized", "the admin port needs its token: send "
                           "`Authorization: Bearer <token>`", challenge)  # fmt: skip
        return await self._api.answer(request, path)

    async def _answer(self, request: HttpRequest) -> HttpResponse:  # noqa: PLR0911 - one per path
        path = request.path.split("?", 1)[0]
        if path.startswith("/api/"):
            return await self._console_api(request, path)
        if path not in _PATHS and path not in PAGE_PATHS:
            return HttpResponse(404, f"{path} is not one of {_LISTED}\n".encode(), _TEXT)
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(405, b"only GET\n", {**_TEXT, "Allow": "GET, HEAD"})
        if path in PAGE_PATHS:
            return page(path)  # no data in it: it asks for the token, the API checks it
        if path == "/health":
            return HttpResponse(200, b"alive\n", _TEXT)
        if path == "/ready":
            ready, doing = self._runtime.readiness
            return HttpResponse(200 if ready else 503, f"{doing}\n".encode(), _TEXT)
        refused = self._door.refusal(request)  # the probes above answer anyone
        if refused is not None:
            return refused
        body = exposition(await self._runtime.observe())
        return HttpResponse(200, body, {"Content-Type": CONTENT_TYPE})
