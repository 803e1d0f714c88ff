"""The load generator: a lean, closed-loop HTTP/1.1 client, run as a process of its own.

    .venv/bin/python bench/harness/load.py     # then one JSON command per line on stdin

It runs as its own process so that its CPU is measured and reported like the peers' processes,
and the same generator drives every peer. It is lean on purpose (asyncio on uvloop, raw request
bytes, ``httptools``' response parser, keep-alive connections): a general client such as
aiohttp costs ~200 µs of CPU per request, which on a small machine would cap what can be
measured. Each command is a JSON object (``Job``) and is answered by one JSON line (``run``'s
result); the process serves commands until stdin closes, so the harness can sample CPU and
memory between a warm-up and a measured run without the process starting in between.

A job sends requests built from a template (``method``, ``path``, ``headers``, ``body``, in
which ``KEY`` is replaced by the i-th key) through ``concurrency`` connections, each with one
request in flight (closed loop), until ``count`` requests were sent or ``seconds`` passed.
The i-th request goes to key ``keys[i % len(keys)]``. It records every request's latency and
answers counts by status, latency percentiles, and optionally the OK count per key (so a
scenario knows the exact total each key must reach) and every answer's body.

``Client`` is also imported by the harness for its own small probes (recovery polling).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import httptools

KEY = "KEY0SENTINEL"  # replaced by the key in a template's path and body


class ConnectionLostError(Exception):
    """The server closed the connection (or it broke) before answering."""


class _Protocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.future: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLostError(f"bad response: {exc}"))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        self.body = []
        self.keep_alive = self.parser.should_keep_alive()
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_result((self.parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionLostError(str(exc) if exc else "connection closed by the server"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class Client:
    """One connection to ``host:port``; reconnects after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._protocol: _Protocol | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        self._protocol = protocol

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one serialized request and return (status, body)."""
        protocol = self._protocol
        if protocol is None or protocol.closed or not protocol.keep_alive:
            await self.connect()
            protocol = self._protocol
        assert protocol is not None
        assert protocol.transport is not None
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        protocol.future = future
        protocol.transport.write(raw)
        return await future

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def serialize(
    method: str, path: str, headers: dict[str, str], body: bytes, host: str = "127.0.0.1"
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive, Content-Length framing)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Job:
    """One load run: what to send, to where, how much."""

    host: str
    port: int
    method: str
    path: str  # may contain KEY
    body: str  # latin-1 text; may contain KEY
    headers: dict[str, str]
    keys: list[str]
    concurrency: int = 1
    count: int = 1
    seconds: float = 60.0
    ok_statuses: list[int] = field(default_factory=lambda: [200, 202])
    per_key: bool = False  # answer the OK count per key index
    bodies: bool = False  # answer every request's (key index, status, body)

    def request(self, key: str) -> bytes:
        path = self.path.replace(KEY, key)
        body = self.body.replace(KEY, key).encode("latin-1")
        return serialize(self.method, path, self.headers, body, self.host)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of ``values`` (nearest rank); zeros when empty."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, int(q * n))]

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "p999": rank(0.999),
        "max": ordered[-1],
        "mean": sum(ordered) / n,
    }


@dataclass
class _Tally:
    """What a run observed."""

    ok_statuses: frozenset[int]
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    ok_per_key: list[int] = field(default_factory=list)
    bodies: list[tuple[int, int, str]] | None = None
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    def answer(self, key_index: int, status: int, body: bytes, elapsed_ms: float) -> None:
        self.statuses[status] += 1
        if status in self.ok_statuses:
            self.latencies.append(elapsed_ms)
            if self.ok_per_key:
                self.ok_per_key[key_index] += 1
        else:
            self.error(f"HTTP {status}: {body[:200]!r}")
        if self.bodies is not None:
            self.bodies.append((key_index, status, body.decode("latin-1")))


async def run(job: Job) -> dict[str, Any]:
    """Run ``job`` closed-loop; the result the harness reads (see the module docstring)."""
    nkeys = len(job.keys)
    cached = [job.request(k) for k in job.keys] if nkeys <= 200_000 else None
    tally = _Tally(frozenset(job.ok_statuses))
    if job.per_key:
        tally.ok_per_key = [0] * nkeys
    if job.bodies:
        tally.bodies = []
    next_index = 0
    clients = [Client(job.host, job.port) for _ in range(max(1, job.concurrency))]
    await asyncio.gather(*(c.connect() for c in clients))
    cpu0 = time.process_time()
    start = time.monotonic()
    deadline = start + job.seconds
    perf = time.perf_counter

    async def worker(client: Client) -> None:
        nonlocal next_index
        while next_index < job.count and time.monotonic() < deadline:
            index = next_index
            next_index += 1
            key_index = index % nkeys
            raw = cached[key_index] if cached is not None else job.request(job.keys[key_index])
            sent = perf()
            try:
                status, body = await client.send(raw)
            except (ConnectionLostError, OSError) as exc:
                tally.statuses[0] += 1
                tally.error(f"{type(exc).__name__}: {exc}")
                continue
            tally.answer(key_index, status, body, (perf() - sent) * 1000.0)

    await asyncio.gather(*(worker(c) for c in clients))
    end = time.monotonic()
    cpu = time.process_time() - cpu0
    for client in clients:
        client.close()
    ok = sum(n for s, n in tally.statuses.items() if s in tally.ok_statuses)
    result: dict[str, Any] = {
        "sent": next_index,
        "ok": ok,
        "statuses": {str(s): n for s, n in sorted(tally.statuses.items())},
        "errors": tally.errors,
        "t_start": start,
        "t_end": end,
        "elapsed_s": end - start,
        "rate": ok / (end - start) if end > start else 0.0,
        "latency_ms": percentiles(tally.latencies),
        "cpu_s": cpu,
    }
    if job.per_key:
        result["ok_per_key"] = tally.ok_per_key
    if tally.bodies is not None:
        result["bodies"] = tally.bodies
    return result


def main() -> None:
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - the bench extra installs it
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = loop.run_until_complete(run(Job(**json.loads(line))))
        except Exception as exc:  # noqa: BLE001 - reported to the harness, which raises
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    loop.close()


if __name__ == "__main__":
    main()
