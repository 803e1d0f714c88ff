"""Calling remote functions over HTTP: pooled keep-alive connections, timeouts, retries.

One call has a total budget, the endpoint's ``call`` timeout. Inside it, every failure of the
endpoint (refused connection, timeout, a status other than those below, a body that is not a
``FromFunction``) is retried with exponential backoff and jitter, as StateFun's async transport
does; each attempt is also bound by the ``connect`` and ``read`` timeouts. When the budget is
spent the call raises ``RetryableError`` naming the address, the URL and the errors seen; the
dispatcher's policy takes it from there. ``write`` is not enforced on its own; the call budget
covers writes.

Answers that say the function itself failed end the call at once, since repeating the request
within the budget would only repeat the answer: HTTP 500 (the function raised) and 413 (the
batch is too large for the server) are ``FunctionError`` (the dispatcher retries a little, then
splits the batch), HTTP 404 (the type is not bound there) and 400 (the server cannot read the
request) are ``TerminalError`` (the batch is dead-lettered).

HTTP goes through ``pystatefun.http.HttpClientPool``: one pool per endpoint and origin, of
``pool_size`` connections kept ``pool_ttl`` while idle. An attempt's error is named as it was
when aiohttp carried the calls (``ClientConnectorError``, ``ServerDisconnectedError``,
``TimeoutError``), so logs, dead letters and the docs keep one vocabulary.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Protocol, final
from urllib.parse import urlsplit

from pystatefun.errors import ProtocolError, RetryableError, TerminalError
from pystatefun.http import (
    HttpBodyTooLargeError,
    HttpClientError,
    HttpClientPool,
    HttpConnectError,
    HttpConnectionClosedError,
    HttpResponse,
    HttpTimeoutError,
)
from pystatefun.module import HttpEndpoint, Transport
from pystatefun.protocol import FromFunction, parse_from_function
from pystatefun.runtime.failures import function_error
from pystatefun.runtime.metrics import RuntimeMetrics

__all__ = ["Invoker", "RemoteInvoker"]

_log = logging.getLogger("pystatefun.runtime.invoker")
_OCTET_STREAM = "application/octet-stream"
_HEADERS = {"Content-Type": _OCTET_STREAM, "Accept": _OCTET_STREAM, "User-Agent": "pystatefun"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


_TERMINAL_HINT = {
    404: "The endpoint does not serve this function type: bind it in the function server, or "
    "route the type to the endpoint that does (`functions` in the module); then re-drive.",
    400: "The function server cannot read StateFun's request: is the URL a StateFun endpoint, "
    "and does its SDK speak the 3.x protocol? Fix it, then re-drive.",
}


class _AttemptFailedError(Exception):
    """One attempt failed; the call may try again within its budget."""


def _split_unix_url(url: str) -> tuple[str, str]:
    """``http+unix:///run/fn.sock/path`` -> (``/run/fn.sock``, ``http://localhost/path``)."""
    scheme, _, rest = url.partition("://")
    parts = rest.split("/")
    for index, part in enumerate(parts):
        if part.endswith(".sock"):
            socket_path = "/".join(parts[: index + 1])
            path = "/".join(parts[index + 1 :])
            return socket_path, f"{scheme.removesuffix('+unix')}://localhost/{path}"
    raise ValueError(f"{url!r} has no path segment ending in .sock")


class Invoker(Protocol):
    """Calls a remote function: the dispatcher's only way out to function servers."""

    #: Calls made, and attempts that failed within them (for statistics).
    calls: int
    attempts_failed: int

    async def call(
        self, endpoint: HttpEndpoint, typename: str, body: bytes, where: str, *,
        trace: str | None = None,
    ) -> FromFunction:  # fmt: skip
        """POST ``body`` (a ``ToFunction``) for ``typename``; its parsed reply, or
        ``RetryableError`` once the endpoint's call budget is spent. ``trace``: sent as the
        ``traceparent`` header, so the function's own spans join the invocation's trace."""
        ...

    async def close(self) -> None: ...


def _ssl_context(transport: Transport) -> ssl.SSLContext:
    """TLS for https endpoints: the module's CA bundle and client certificate, if any; else
    the system's trust store."""
    cafile, cert = transport.trust_cacerts, transport.client_cert
    if cafile is None and cert is None:
        return ssl.create_default_context()
    context = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
    if cert is not None:
        password_file = transport.client_key_password
        password = None if password_file is None else Path(password_file).read_text().strip()
        context.load_cert_chain(str(cert), str(transport.client_key), password)
    return context


def _hint(reasons: Counter[str]) -> str:
    return "Check that the function server is up and answers StateFun requests at that URL."


def _reason(exc: HttpClientError, unix: bool) -> str:
    """An attempt's error as the dead letters and logs show it (names from the aiohttp days)."""
    if isinstance(exc, HttpTimeoutError):
        return f"TimeoutError: {exc}"
    if isinstance(exc, HttpConnectError):
        return f"{'UnixClientConnectorError' if unix else 'ClientConnectorError'}: {exc}"
    if isinstance(exc, HttpConnectionClosedError):
        return f"ServerDisconnectedError: {exc}"
    return f"{type(exc).__name__}: {exc}"


@final
class _Route:
    """Where one URL's requests go: its pool, the request target, and how to name errors."""

    __slots__ = ("pool", "target", "unix")

    def __init__(self, pool: HttpClientPool, target: str, unix: bool) -> None:
        self.pool, self.target, self.unix = pool, target, unix


@final
class RemoteInvoker:
    """Sends ``ToFunction`` bytes to endpoints; one connection pool per endpoint and origin."""

    def __init__(
        self,
        backoff_initial_s: float = 0.01,
        backoff_max_s: float = 1.0,
        rng: random.Random | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._metrics = metrics or RuntimeMetrics()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._pools: dict[tuple[int, str, str, int, str | None], HttpClientPool] = {}
        self._routes: dict[tuple[int, str], _Route] = {}
        self._tls: dict[int, ssl.SSLContext] = {}
        self.calls = 0
        self.attempts_failed = 0

    def _route(self, endpoint: HttpEndpoint, url: str) -> _Route:
        route = self._routes.get((id(endpoint), url))
        if route is None:
            route = self._new_route(endpoint, url)
            self._routes[(id(endpoint), url)] = route
        return route

    def _new_route(self, endpoint: HttpEndpoint, url: str) -> _Route:
        transport = endpoint.transport
        socket_path = None
        request_url = url
        if "+unix://" in url:
            socket_path, request_url = _split_unix_url(url)
        parts = urlsplit(request_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"{url!r} is not an http, https or http+unix URL")
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (id(endpoint), parts.scheme, host, port, socket_path)
        pool = self._pools.get(key)
        if pool is None:
            tls = None
            if parts.scheme == "https":
                tls = self._tls.get(id(endpoint))
                if tls is None:
                    tls = self._tls[id(endpoint)] = _ssl_context(transport)
            pool = HttpClientPool(
                host,
                port,
                ssl_context=tls,
                unix_path=socket_path,
                pool_size=transport.pool_size,
                # pool_ttl 0 means "do not reuse connections", as in StateFun.
                keepalive_s=transport.pool_ttl_s,
            )
            self._pools[key] = pool
        return _Route(pool, target, socket_path is not None)

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        self._routes.clear()

    async def call(
        self, endpoint: HttpEndpoint, typename: str, body: bytes, where: str, *,
        trace: str | None = None,
    ) -> FromFunction:  # fmt: skip
        """POST ``body`` to the endpoint of ``typename``; retry within the call budget."""
        self.calls += 1
        url = endpoint.url_for(typename)
        try:
            route = self._route(endpoint, url)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise RetryableError(
                f"{where}: cannot set up the connection to {url}: {exc}. Check the endpoint's "
                "URL and its transport's TLS files (trust_cacerts, client_cert, client_key)."
            ) from exc
        started = time.monotonic()
        try:
            headers = _HEADERS if trace is None else {**_HEADERS, "traceparent": trace}
            return await self._call(route, typename, body, where, url,
                                    transport=endpoint.transport, headers=headers)  # fmt: skip
        finally:
            self._metrics.function(typename).remote_latency.observe(time.monotonic() - started)

    async def _call(
        self, route: _Route, typename: str, body: bytes, where: str, url: str, *,
        transport: Transport, headers: dict[str, str],
    ) -> FromFunction:  # fmt: skip
        deadline = time.monotonic() + transport.call_timeout_s
        attempt = 0
        reasons: Counter[str] = Counter()
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await self._attempt(
                    route, body, remaining, transport, where=where, headers=headers
                )
            except _AttemptFailedError as exc:
                self.attempts_failed += 1
                self._metrics.function(typename).remote_failures += 1
                attempt += 1
                reason = str(exc)[:300]
                reasons[reason] += 1
            except Exception:  # an answer that says the function failed, or garbage
                self._metrics.function(typename).remote_failures += 1
                raise
            delay = min(self._backoff_initial_s * 2**attempt, self._backoff_max_s)
            delay *= 0.8 + 0.4 * self._rng.random()
            remaining = deadline - time.monotonic()
            _log.debug("%s: attempt %d to %s failed: %s", where, attempt, url, reason)
            if remaining <= delay:
                seen = "; ".join(f"{r} (x{n})" for r, n in reasons.most_common(3))
                raise RetryableError(
                    f"{where}: {url} failed {attempt} times within the call timeout of "
                    f"{transport.call_timeout_s:g}s; errors: {seen}. {_hint(reasons)}"
                )
            await asyncio.sleep(delay)

    async def _attempt(
        self, route: _Route, body: bytes, remaining_s: float, transport: Transport, *,
        where: str, headers: dict[str, str],
    ) -> FromFunction:  # fmt: skip
        limit = transport.payload_max_bytes
        try:
            response = await route.pool.request(
                "POST",
                route.target,
                body,
                headers,
                connect_timeout_s=transport.connect_timeout_s,
                read_timeout_s=transport.read_timeout_s,
                total_timeout_s=max(remaining_s, 0.001),
                max_body_bytes=limit,
            )
        except HttpBodyTooLargeError as exc:
            if 200 <= exc.status < 300:
                raise _AttemptFailedError(
                    f"response exceeds payload_max_bytes ({limit} bytes)"
                ) from exc
            raise _AttemptFailedError(
                f"HTTP {exc.status}: (a body over payload_max_bytes, {limit} bytes)"
            ) from exc
        except HttpClientError as exc:
            raise _AttemptFailedError(_reason(exc, route.unix)) from exc
        return _from_function(response, where)


def _from_function(response: HttpResponse, where: str) -> FromFunction:
    """The reply in a response, or the reason the attempt failed (see the module docs)."""
    status = response.status
    if not 200 <= status < 300:
        text = response.body[:2000].decode("utf-8", "replace").strip()
        if status == 500:
            raise function_error(f"the function raised (HTTP 500): {text}", where=where)
        if status == 413:
            too_large = f"the batch is too large for the server (HTTP 413): {text}"
            raise function_error(too_large, where=where, retry_helps=False)
        if status in (400, 404):
            raise TerminalError(f"{where}: HTTP {status}: {text[:300]}. {_TERMINAL_HINT[status]}")
        raise _AttemptFailedError(f"HTTP {status}: {text[:300]}")
    content_type = response.headers.get("content-type", "")
    if _OCTET_STREAM not in content_type.lower():
        raise _AttemptFailedError(f"answered Content-Type {content_type!r}, not {_OCTET_STREAM}")
    try:
        return parse_from_function(response.body)
    except ProtocolError as exc:
        raise _AttemptFailedError(str(exc)) from exc
