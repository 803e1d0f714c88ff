"""The runtime in-process, with real HTTP servers on 127.0.0.1 for its functions and clients.

For tests that need to reach inside (an injected clock, statistics, the store) or to make an
endpoint misbehave on purpose. Everything still goes over real sockets and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from pystatefun.module import load_module
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.service import Runtime
from pystatefun.sdk import StatefulFunctions
from pystatefun.sdk.aiohttp import make_app
from support.modules import write_module as write_module

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def http_server(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def function_server(functions: StatefulFunctions, port: int = 0) -> AsyncIterator[str]:
    """Serve SDK functions; yields the endpoint URL."""
    async with http_server(make_app(functions, path="/statefun"), port) as url:
        yield url + "/statefun"


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A server whose every POST is answered by ``handler`` (to misbehave on purpose)."""
    app = web.Application()
    app.router.add_post("/statefun", handler)
    async with http_server(app) as url:
        yield url + "/statefun"


@dataclass
class FakeClock:
    """Wall-clock milliseconds that move only when a test says so."""

    now_ms: int = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@asynccontextmanager
async def running(module: Path, data_dir: Path, **options: object) -> AsyncIterator[Runtime]:
    opts = RuntimeOptions(data_dir=data_dir, durability="os", **options)  # type: ignore[arg-type]
    async with Runtime(load_module(module), opts) as runtime:
        yield runtime


async def post(
    url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers or {}) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def pop(runtime: Runtime, topic: str) -> str | None:
    status, _, body = await post(f"{runtime.egress_url}/{topic}", method="GET")
    assert status in (200, 404), (status, body)
    return body.decode() if status == 200 else None


async def wait_for(check: Callable[[], object], timeout_s: float = 30.0) -> object:
    """Poll ``check`` (plain, or returning an awaitable) until it gives something truthy. Only
    for conditions with no event to await (an egress is pull-only; a retry policy runs on its
    own clock); bounded."""
    deadline = time.monotonic() + timeout_s

    async def result_of_check() -> object:
        result = check()
        return await result if inspect.isawaitable(result) else result

    while not (result := await result_of_check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return result


async def readings(runtime: Runtime, name: str, by: str | None = None) -> dict[str, float]:
    """The runtime's readings (``/metrics``' connector and store figures) named ``name``
    (ending in ``*``: starting with it): by their ``by`` label's value, else by name."""
    prefix = name.endswith("*")
    chosen = [r for r in (await runtime.observe()).readings
              if (r.name.startswith(name[:-1]) if prefix else r.name == name)]  # fmt: skip
    return {(dict(r.labels)[by] if by else r.name): r.value for r in chosen}


async def records(runtime: Runtime, topic: str, count: int) -> list[str]:
    """Wait for ``count`` records on ``topic`` and return them."""
    got: list[str] = []

    async def enough() -> bool:
        while (record := await pop(runtime, topic)) is not None:
            got.append(record)
        return len(got) >= count

    await wait_for(enough)
    return got
