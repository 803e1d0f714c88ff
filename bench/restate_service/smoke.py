"""Self-check of the Restate peer: start it, exercise every request, crash and restart the server.

    .venv/bin/python bench/restate_service/smoke.py [--adds 200]

Prints each check, the listening sockets of the started PIDs (all must be 127.0.0.1), the
sequential add p50 and the time from restart to the first successful add. Exits non-zero on the
first failed check; always stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.peer import Request
from harness.restate_peer import RestatePeer

RESTART_TIMEOUT_S = 60.0
TICK_TIMEOUT_S = 10.0


class Client:
    """HTTP/1.1 to the peer's ingress, one keep-alive connection."""

    def __init__(self, peer: RestatePeer, session: aiohttp.ClientSession) -> None:
        self.peer = peer
        self.session = session

    async def send(self, request: Request) -> tuple[int, bytes]:
        async with self.session.request(
            request.method,
            self.peer.ingress + request.path,
            data=request.body or None,
            headers=request.headers,
        ) as response:
            return response.status, await response.read()

    async def ok(self, request: Request) -> bytes:
        status, body = await self.send(request)
        if not 200 <= status < 300:
            raise AssertionError(f"{request.method} {request.path}: {status} {body[:300]!r}")
        return body

    async def integer(self, request: Request) -> int:
        return self.peer.parse_int(await self.ok(request))


def expect(what: str, got: object, want: object) -> None:
    mark = "ok" if got == want else "FAIL"
    print(f"  [{mark}] {what}: {got!r}" + ("" if got == want else f" (want {want!r})"))
    if got != want:
        raise AssertionError(what)


def listening(pids: dict[str, int]) -> list[str]:
    """``ss -ltnp`` lines (TCP and UDP listeners) of the given PIDs; fails on a non-loopback one."""
    out = subprocess.run(["ss", "-ltunp"], capture_output=True, text=True, check=True).stdout
    lines = [
        line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids.values())
    ]
    for line in lines:
        local = line.split()[4]
        if not local.startswith("127.0.0.1:"):
            raise AssertionError(f"listener not on 127.0.0.1: {line}")
    return lines


async def logic(client: Client) -> None:
    peer = client.peer
    print("counter k: 5 sequential adds")
    got = [await client.integer(peer.add("k", 1, wait=True)) for _ in range(5)]
    expect("adds answer 1..5", got, [1, 2, 3, 4, 5])
    expect("get", await client.integer(peer.get("k")), 5)
    status, body = await client.send(peer.add("k", 1, wait=False))
    print(f"  one-way add answered {status} {body[:120]!r}")
    expect("one-way add accepted", 200 <= status < 300, True)
    expect("get after one-way add", await client.integer(peer.get("k")), 6)

    print("chain x: a -> b -> c")
    expect("first chain", await client.integer(peer.chain("x")), 1)
    expect("second chain", await client.integer(peer.chain("x")), 2)

    print("ticker t: schedule, then poll lateness")
    await client.ok(peer.schedule_tick("t"))
    scheduled = time.monotonic()
    while not (late := peer.parse_lateness(await client.ok(peer.lateness("t")))):
        if time.monotonic() - scheduled > TICK_TIMEOUT_S:
            raise AssertionError("no tick arrived")
        await asyncio.sleep(0.05)
    expect("one lateness entry", len(late), 1)
    print(f"  lateness: {late[0]:.1f} ms (arrived {time.monotonic() - scheduled:.2f}s later)")


async def latency(client: Client, adds: int) -> None:
    print(f"latency: {adds} sequential adds on key 'seq'")
    samples = []
    for _ in range(adds):
        t0 = time.perf_counter()
        await client.integer(client.peer.add("seq", 1, wait=True))
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    print(
        f"  sequential add p50 {statistics.median(samples):.2f} ms, "
        f"p90 {samples[int(len(samples) * 0.9)]:.2f} ms, max {samples[-1]:.2f} ms"
    )


async def crash(client: Client) -> None:
    peer = client.peer
    print("crash: kill -9 the server, restart it, poll until an add works")
    peer.kill_server()
    peer.restart_server()
    restarted = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            status, body = await asyncio.wait_for(
                client.send(peer.add("k", 1, wait=True)), timeout=5.0
            )
            if status == 200:
                break
        except (aiohttp.ClientError, TimeoutError, OSError):
            pass
        if time.monotonic() - restarted > RESTART_TIMEOUT_S:
            raise AssertionError("server did not come back")
        await asyncio.sleep(0.05)
    took = time.monotonic() - restarted
    print(f"  restart -> first successful add: {took:.2f}s ({attempts} attempts)")
    expect("count on k preserved across the crash (6 + 1)", peer.parse_int(body), 7)
    expect("get after restart", await client.integer(peer.get("k")), 7)


async def exercise(peer: RestatePeer, adds: int) -> None:
    async with aiohttp.ClientSession() as session:
        client = Client(peer, session)
        await logic(client)
        await latency(client, adds)
        await crash(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=200, help="sequential adds for the p50")
    args = parser.parse_args()

    peer = RestatePeer()
    t0 = time.monotonic()
    peer.start()
    try:
        print(
            f"started in {time.monotonic() - t0:.2f}s: ingress {peer.ingress}, admin {peer.admin}"
        )
        pids = peer.processes()
        print(f"processes: {pids}")
        for line in listening(pids):
            print(f"  {line}")
        asyncio.run(exercise(peer, args.adds))
        print("listeners after restart:")
        for line in listening(peer.processes()):
            print(f"  {line}")
    finally:
        peer.stop()
    print("smoke: all checks passed")


if __name__ == "__main__":
    main()
