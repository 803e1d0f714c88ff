"""The web console's JSON API on the admin port (``/api/...``); docs/operations.md, "Web
console", lists it.

Every answer is JSON; a refusal is ``{"error": "<what happened and what to do>", "code":
"<kind>"}`` with a 4xx status. The admin port's front door has already checked the admin
token. Requests that change something (re-drive, delete, take a savepoint) are ``POST`` with
``Content-Type: application/json``: an HTML form on another site cannot send that type, and a
script there cannot either without a CORS preflight, which this port never allows; a request
whose ``Origin`` is not this port is refused too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, final
from urllib.parse import parse_qs, urlsplit

from pystatefun.admin import console_figures
from pystatefun.admin.console_address import address_of, decoded, looked_up
from pystatefun.admin.console_errors import BadInputError, ConsoleError
from pystatefun.admin.console_savepoints import take_savepoint
from pystatefun.admin.console_sql import run_sql
from pystatefun.errors import NoSuchDeadLetterError, PystatefunError
from pystatefun.http import HttpRequest, HttpResponse
from pystatefun.store import Contents, DeadLetter

if TYPE_CHECKING:
    from pystatefun.admin.server import Observed

__all__ = ["DEAD_LETTERS_SHOWN", "ConsoleApi", "refusal"]

_log = logging.getLogger("pystatefun.admin")
#: The most dead letters one listing holds (it says how many there are in all).
DEAD_LETTERS_SHOWN = 200
_MESSAGES_SHOWN = 20  # messages of one dead letter shown
_IDS_MAX = 10_000

Json = dict[str, object]
_Route = Callable[[HttpRequest], Awaitable[Json]]


_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def refusal(
    status: int, code: str, error: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    """A JSON refusal: what happened and what to do (``error``), and its kind (``code``)."""
    body = json.dumps({"error": error, "code": code}).encode()
    return HttpResponse(status, body, {**_JSON, **(headers or {})})


def _dead_letter(letter: DeadLetter) -> Json:
    return {"id": letter.dead_letter_id, "address": str(letter.target), "error": letter.error,
            "attempts": letter.attempts, "failed_at_ms": letter.failed_at_ms,
            "message_count": len(letter.messages),
            "messages": [{"caller": None if m.caller is None else str(m.caller),
                          "value": decoded(m.payload)}
                         for m in letter.messages[:_MESSAGES_SHOWN]]}  # fmt: skip


def _body(request: HttpRequest) -> dict[str, object]:
    """The JSON object a write request carries; refused unless it says it is JSON."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise ConsoleError("send the request body as JSON, with Content-Type: "
                           "application/json", status=415, code="content-type")  # fmt: skip
    try:
        document = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise BadInputError(f"the body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(document, dict):
        raise BadInputError('the body must be a JSON object, such as {"ids": [1, 2]}')
    return document


def _ids(document: dict[str, object]) -> list[int]:
    ids = document.get("ids")
    if (not isinstance(ids, list) or not ids or len(ids) > _IDS_MAX
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):  # fmt: skip
        raise BadInputError(f'send {{"ids": [<dead letter id>, ...]}}: 1 to {_IDS_MAX:,} '
                            "integer ids (GET /api/dead-letters lists them)")  # fmt: skip
    return ids


def _cross_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


@final
class ConsoleApi:
    """Answers ``/api/...`` for ``runtime``: SQL on ``data_dir`` (None: a cluster worker, which
    has none), savepoints into ``savepoint_dir`` (of ``savepoint_contents`` when given, else of
    the runtime's engine)."""

    def __init__(
        self, runtime: Observed, *, data_dir: Path | None, savepoint_dir: Path | None,
        savepoint_contents: Callable[[], Contents] | None = None,
    ) -> None:  # fmt: skip
        self._runtime = runtime
        self._data_dir, self._savepoint_dir = data_dir, savepoint_dir
        self._contents = savepoint_contents
        self._reads: dict[str, _Route] = {
            "/api/info": self._info, "/api/overview": self._overview,
            "/api/functions": self._functions, "/api/address": self._address,
            "/api/dead-letters": self._dead_letters,
        }  # fmt: skip
        self._writes: dict[str, _Route] = {
            "/api/dead-letters/redrive": self._redrive, "/api/dead-letters/delete": self._delete,
            "/api/sql": self._sql, "/api/savepoints": self._savepoint,
        }  # fmt: skip

    async def answer(self, request: HttpRequest, path: str) -> HttpResponse:
        """The answer to an ``/api/...`` request that came through the front door."""
        try:
            document = await self._routed(request, path)
        except ConsoleError as exc:
            allowed = "POST" if path in self._writes else "GET"
            return refusal(exc.status, exc.code, str(exc),
                           {"Allow": allowed} if exc.status == 405 else None)  # fmt: skip
        except NoSuchDeadLetterError as exc:
            return refusal(404, "no-such-dead-letter", str(exc))
        except PystatefunError as exc:
            return refusal(500, exc.code or "error", str(exc))
        except Exception:  # noqa: BLE001 - answered, and logged with its traceback
            _log.exception("the console API failed to answer %s", path)
            return refusal(500, "internal", "the console API failed; the runtime's log has why")
        return HttpResponse(200, json.dumps(document).encode(), _JSON)

    async def _routed(self, request: HttpRequest, path: str) -> Json:
        route = self._reads.get(path) or self._writes.get(path)
        if route is None:
            paths = ", ".join(sorted({*self._reads, *self._writes}))
            raise ConsoleError(f"{path} is not part of the console API ({paths})", status=404,
                               code="not-found")  # fmt: skip
        method = "POST" if path in self._writes else "GET"
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            raise ConsoleError(f"{path} takes {method}", status=405, code="method")
        if method == "POST" and _cross_origin(request):
            raise ConsoleError("requests from another site are refused; use the console on "
                               "this port", status=403, code="cross-origin")  # fmt: skip
        return await route(request)

    def _serving(self) -> None:
        ready, doing = self._runtime.readiness
        if not ready:
            raise ConsoleError(f"the runtime is not serving ({doing}); the console shows its "
                               "store once /ready answers 200", status=503,
                               code="not-ready")  # fmt: skip

    async def _info(self, request: HttpRequest) -> Json:
        engine, (ready, doing) = self._runtime.engine, self._runtime.readiness
        savepoints = None if self._savepoint_dir is None else str(self._savepoint_dir)
        return {"where": engine.where, "cluster": engine.shared,
                "sql": self._data_dir is not None, "savepoint_dir": savepoints,
                "ready": ready, "phase": doing}  # fmt: skip

    async def _overview(self, request: HttpRequest) -> Json:
        seen = await self._runtime.observe()
        return console_figures.overview(seen, ready=self._runtime.readiness, now_ms=_now_ms())

    async def _functions(self, request: HttpRequest) -> Json:
        return console_figures.functions(await self._runtime.observe(), now_ms=_now_ms())

    async def _address(self, request: HttpRequest) -> Json:
        asked = parse_qs(request.query)
        address = address_of(*(asked.get(key, [None])[0] for key in ("type", "id")))
        self._serving()
        return await looked_up(self._runtime.engine, address, now_ms=_now_ms())

    async def _dead_letters(self, request: HttpRequest) -> Json:
        self._serving()
        engine = self._runtime.engine
        letters = await engine.dead_letters(DEAD_LETTERS_SHOWN)
        total = (await engine.counts(("dead_letters",)))["dead_letters"]
        return {"dead_letters": [_dead_letter(one) for one in letters], "total": total}

    async def _redrive(self, request: HttpRequest) -> Json:
        ids = _ids(_body(request))
        self._serving()
        return {"redriven_messages": await self._runtime.engine.redrive(ids), "ids": ids}

    async def _delete(self, request: HttpRequest) -> Json:
        ids = _ids(_body(request))
        self._serving()
        return {"deleted": await self._runtime.engine.delete_dead_letters(ids), "ids": ids}

    async def _sql(self, request: HttpRequest) -> Json:
        return await run_sql(self._data_dir, _body(request).get("query"))

    async def _savepoint(self, request: HttpRequest) -> Json:
        _body(request)
        self._serving()
        return await take_savepoint(self._runtime.engine, self._savepoint_dir,
                                    contents=self._contents)  # fmt: skip


def _now_ms() -> int:
    return int(time.time() * 1000)
