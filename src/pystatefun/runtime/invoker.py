"""Calling remote functions over HTTP: pooled keep-alive connections, timeouts, retries.

One call has a total budget, the endpoint's ``call`` timeout. Inside it, every failure (refused
connection, timeout, non-2xx status, a body that is not a ``FromFunction``) is retried with
exponential backoff and jitter, as StateFun's async transport does; each attempt is also bound
by the ``connect`` and ``read`` timeouts. When the budget is spent the call raises
``RetryableError`` naming the address, the URL and the errors seen; the dispatcher's policy
takes it from there. aiohttp has no write timeout; ``write`` is covered by the call budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Any, final

import aiohttp

from pystatefun.errors import ProtocolError, RetryableError
from pystatefun.protocol import FromFunction, parse_from_function

__all__ = ["RemoteInvoker"]

_log = logging.getLogger("pystatefun.runtime.invoker")
_OCTET_STREAM = "application/octet-stream"
_HEADERS = {"Content-Type": _OCTET_STREAM, "Accept": _OCTET_STREAM, "User-Agent": "pystatefun"}


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


def _ssl_context(transport: Any) -> ssl.SSLContext | bool:
    """TLS for https endpoints: the module's CA bundle and client certificate, if any; else
    the system's trust store (``True``)."""
    cafile = getattr(transport, "trust_cacerts", None)
    cert = getattr(transport, "client_cert", None)
    if cafile is None and cert is None:
        return True
    context = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
    if cert is not None:
        password_file = getattr(transport, "client_key_password", None)
        password = None if password_file is None else Path(password_file).read_text().strip()
        context.load_cert_chain(str(cert), str(transport.client_key), password)
    return context


def _hint(reasons: Counter[str]) -> str:
    if any(reason.startswith("HTTP 500") for reason in reasons):
        return "HTTP 500 means the function itself raised: its server's log has the traceback."
    return "Check that the function server is up and answers StateFun requests at that URL."


@final
class RemoteInvoker:
    """Sends ``ToFunction`` bytes to endpoints; one connection pool per endpoint."""

    def __init__(
        self,
        backoff_initial_s: float = 0.01,
        backoff_max_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._sessions: dict[tuple[int, str | None], aiohttp.ClientSession] = {}
        self.calls = 0
        self.attempts_failed = 0

    def _session(self, endpoint: Any, url: str) -> tuple[aiohttp.ClientSession, str]:
        transport = endpoint.transport
        socket_path = None
        if "+unix://" in url:
            socket_path, url = _split_unix_url(url)
        key = (id(endpoint), socket_path)
        session = self._sessions.get(key)
        if session is None:
            connector: aiohttp.BaseConnector
            if socket_path is not None:
                connector = aiohttp.UnixConnector(
                    path=socket_path,
                    limit=transport.pool_size,
                    force_close=not transport.pool_ttl_s,
                    keepalive_timeout=transport.pool_ttl_s or None,
                )
            else:
                connector = aiohttp.TCPConnector(
                    limit=transport.pool_size,
                    # pool_ttl 0 means "do not reuse connections", as in StateFun.
                    force_close=not transport.pool_ttl_s,
                    keepalive_timeout=transport.pool_ttl_s or None,
                    ssl=_ssl_context(transport),
                )
            session = aiohttp.ClientSession(connector=connector, headers=_HEADERS)
            self._sessions[key] = session
        return session, url

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def call(self, endpoint: Any, typename: str, body: bytes, where: str) -> FromFunction:
        """POST ``body`` to the endpoint of ``typename``; retry within the call budget."""
        self.calls += 1
        url = endpoint.url_for(typename)
        try:
            session, request_url = self._session(endpoint, url)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise RetryableError(
                f"{where}: cannot set up the connection to {url}: {exc}. Check the endpoint's "
                "URL and its transport's TLS files (trust_cacerts, client_cert, client_key)."
            ) from exc
        transport = endpoint.transport
        deadline = time.monotonic() + transport.call_timeout_s
        attempt = 0
        reasons: Counter[str] = Counter()
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await self._attempt(session, request_url, body, remaining, transport)
            except _AttemptFailedError as exc:
                self.attempts_failed += 1
                attempt += 1
                reason = str(exc)[:300]
                reasons[reason] += 1
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
        self,
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        remaining_s: float,
        transport: Any,
    ) -> FromFunction:
        timeout = aiohttp.ClientTimeout(
            total=max(remaining_s, 0.001),
            sock_connect=transport.connect_timeout_s,
            sock_read=transport.read_timeout_s,
        )
        limit = transport.payload_max_bytes
        try:
            async with session.post(url, data=body, timeout=timeout) as response:
                if not 200 <= response.status < 300:
                    text = (await response.content.read(300)).decode("utf-8", "replace")
                    raise _AttemptFailedError(f"HTTP {response.status}: {text.strip()}")
                content_type = response.headers.get("Content-Type", "")
                if _OCTET_STREAM not in content_type.lower():
                    raise _AttemptFailedError(
                        f"answered Content-Type {content_type!r}, not {_OCTET_STREAM}"
                    )
                data = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > limit:
                        raise _AttemptFailedError(
                            f"response exceeds payload_max_bytes ({limit} bytes)"
                        )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _AttemptFailedError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return parse_from_function(data)
        except ProtocolError as exc:
            raise _AttemptFailedError(str(exc)) from exc
