"""An ``http+unix`` endpoint: the function server listens on a Unix domain socket only."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from support.counting_functions import counting
from support.inprocess import post, records, running
from support.inprocess import write_module as module_file

from pystatefun.sdk.aiohttp import make_app


async def test_an_http_unix_endpoint(tmp_path: Path) -> None:
    socket_path = tmp_path / "fn.sock"
    runner = web.AppRunner(make_app(counting("u/fn")), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.UnixSite(runner, str(socket_path)).start()
    try:
        module = module_file(tmp_path / "m.yaml", {"u/*": f"http+unix://{socket_path}/statefun"})
        async with running(module, tmp_path / "data") as runtime:
            assert (await post(f"{runtime.ingress_url}/u/fn/a", b"via-socket"))[0] == 202
            assert await records(runtime, "out", 1) == ["a:via-socket:1"]
    finally:
        await runner.cleanup()
