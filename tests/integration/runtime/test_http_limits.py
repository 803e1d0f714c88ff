"""The runtime's playground ingress and egress enforce ``RuntimeOptions.http_limits``, and
``pystatefun run --http-*`` sets them: real sockets on 127.0.0.1, in process and as a process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from support.inprocess import running
from support.inprocess import write_module as module_file
from support.runtime_process import start_runtime

from pystatefun.http import HttpLimits

pytestmark = pytest.mark.timeout(120)

# No function is ever called: every request here is refused before the runtime sees it.
_NOWHERE = "http://127.0.0.1:9/statefun"


def _request(headers: int) -> bytes:
    fields = "".join(f"X-{i}: v\r\n" for i in range(headers))
    return f"POST /c/fn/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n{fields}\r\n".encode()


async def _exchange(url: str, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes; bounded."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


async def test_the_ingress_and_egress_apply_the_runtime_options_limits(tmp_path: Path) -> None:
    module = module_file(tmp_path / "m.yaml", {"c/*": _NOWHERE})
    limits = HttpLimits(max_headers=5)
    async with running(module, tmp_path / "data", http_limits=limits) as runtime:
        assert runtime.ingress_url is not None
        assert runtime.egress_url is not None
        for url in (runtime.ingress_url, runtime.egress_url):
            answer = await _exchange(url, _request(headers=4))  # with Host and Content-Length: 6
            assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
            assert b"too many header fields: over 5 fields" in answer
        assert (await runtime.engine.counts())["inbox"] == 0


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pystatefun_run_takes_the_http_limits_from_its_options(tmp_path: Path) -> None:
    module = module_file(tmp_path / "m.yaml", {"c/*": _NOWHERE})
    runtime = start_runtime(
        module, tmp_path / "data", "--http-max-headers", "5", "--http-max-connections", "1"
    )
    try:
        host, port = runtime.ingress.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as first:
            first.sendall(_request(headers=4))
            assert _read_all(first).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection((host, int(port)), timeout=30) as held:
            held.sendall(b"POST /c/fn/1 HTTP/1.1\r\n")  # one connection open, its head begun
            with socket.create_connection((host, int(port)), timeout=30) as second:
                answer = _read_all(second)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        assert b"too many connections: at 1 open" in answer
    finally:
        assert runtime.terminate() == 0
