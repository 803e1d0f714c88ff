"""The scenarios: each runs once per peer, interleaved, with the same load generator.

Every peer is started up front and kept running; each scenario runs for every peer in turn (the
order rotates from one scenario to the next), ``recovery`` last because it kills servers. Every
measured run is preceded by a warm-up (up to ``warmup_s`` or ``warmup_calls``, same requests)
and bounded by ``seconds`` and ``max_calls``. Around each measured run the harness samples
every process (``procstats``): the peer's ``server`` and ``service`` and the load generator
(``load``), giving CPU seconds per call per process and memory at the end of the run.

- ``sequential``: request-reply adds to one counter, one request in flight.
- ``keys-1000``: request-reply adds over ``keys`` (1,000) counters, ``inflight`` (64) in flight.
- ``hot-key``: request-reply adds to one counter, 64 in flight.
- ``one-way``: one-way adds over 1,000 fresh counters, 64 in flight. Accept rate = answers that
  the add is durably accepted (202) per second. Then every touched counter is read (``get``)
  until it reports exactly the number of adds accepted for it; "visible" is the time from the
  first send until the last counter reported its total, and end-to-end = adds / visible.
- ``chain``: request-reply calls A -> B -> C (each adds 1 to its own durable state), one
  in flight (``chain_inflight``) over 1,000 keys; answered once C has written its state.
- ``delayed``: ``ticks`` (50) tickers on fresh keys each schedule a message to themselves 1 s
  ahead; the lateness of each delivery (measured by the function) is read back.
- ``recovery``: ``entities`` counters in state (written straight into the stopped data dir when
  the peer can, else sent as one-way adds within ``preload_budget_s``), then a backlog of
  ``backlog`` one-way adds over 1,000 of them; the server is killed (SIGKILL) right after the
  last add is accepted and restarted at once. Measured: restart -> first accepted one-way
  request (polled every 5 ms), restart -> every backlog counter reports its full total, and the
  server's memory then.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import procstats
from .load import KEY, Client, ConnectionLostError, Job, percentiles, serialize
from .peer import Peer, Request

__all__ = ["SCENARIOS", "Loader", "Result", "Settings", "run_all"]

LOAD_SCRIPT = Path(__file__).resolve().parent / "load.py"
POLL_S = 0.005


@dataclass
class Settings:
    """Sizes and time bounds of a run (``bench/run.py`` sets them from its options)."""

    seconds: float = 10.0
    warmup_s: float = 1.0
    warmup_calls: int = 500
    max_calls: int = 500_000
    keys: int = 1000
    inflight: int = 64
    chain_inflight: int = 1
    ticks: int = 50
    entities: int = 1_000_000
    backlog: int = 20_000
    preload_budget_s: float = 180.0
    preload_chunk: int = 10_000
    visible_timeout_s: float = 600.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            seconds=1.5,
            warmup_s=0.3,
            warmup_calls=100,
            max_calls=3_000,
            ticks=10,
            entities=5_000,
            backlog=1_000,
            preload_budget_s=20.0,
            preload_chunk=2_500,
            visible_timeout_s=120.0,
        )


@dataclass
class Result:
    """One scenario on one peer. Times in seconds unless named ``_ms``; memory in MiB."""

    scenario: str
    peer: str
    calls: int = 0
    seconds: float = 0.0
    throughput: float | None = None  # calls per second
    latency_ms: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # per role, during the measured run
    cpu_ms_per_call: dict[str, float] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)  # per role, after the run
    hwm_mib: dict[str, float] = field(default_factory=dict)  # per role, peak since start
    extra: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Loader:
    """The load generator process (``load.py``): one JSON job in, one JSON result out."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(LOAD_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, job: Job) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(asdict(job)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator exited ({self.process.poll()})")
        result: dict[str, Any] = json.loads(line)
        if "fatal" in result:
            raise RuntimeError(f"load generator: {result['fatal']}")
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Bench:
    """What a scenario needs: the loader, settings, and helpers that build and check jobs."""

    def __init__(self, loader: Loader, settings: Settings) -> None:
        self.loader = loader
        self.settings = settings
        self._runs = 0

    def fresh(self, scenario: str) -> str:
        """A key prefix no earlier run used."""
        self._runs += 1
        return f"{scenario}-{int(time.time()) % 100_000}-{self._runs}"

    def pids(self, peer: Peer) -> dict[str, int]:
        return {**peer.processes(), "load": self.loader.pid}

    def job(
        self,
        peer: Peer,
        make: Callable[[str], Request],
        keys: list[str],
        *,
        concurrency: int,
        count: int,
        seconds: float,
        ok: tuple[int, ...] = (200, 202),
        per_key: bool = False,
        bodies: bool = False,
    ) -> Job:
        """A job sending ``make(key)`` for each key in turn; checks the template reproduces it."""
        url = urlsplit(peer.ingress)
        assert url.hostname is not None, peer.ingress
        assert url.port is not None, peer.ingress
        template = make(KEY)
        job = Job(
            host=url.hostname,
            port=url.port,
            method=template.method,
            path=template.path,
            body=template.body.decode("latin-1"),
            headers=dict(template.headers),
            keys=keys,
            concurrency=max(1, min(concurrency, count)),
            count=count,
            seconds=seconds,
            ok_statuses=list(ok),
            per_key=per_key,
            bodies=bodies,
        )
        sample = make("k42")
        expected = serialize(sample.method, sample.path, sample.headers, sample.body, job.host)
        if job.request("k42") != expected:
            raise RuntimeError(f"{peer.name}: its requests do not follow one template per key")
        return job

    def run(self, job: Job) -> dict[str, Any]:
        return self.loader.run(job)

    def wait_visible(
        self, peer: Peer, keys: list[str], expected: list[int], timeout_s: float
    ) -> tuple[float, list[str]]:
        """Read every counter until it reports its expected total; (monotonic time of the last
        answer that completed the set, problems). Over-counts are problems, reported once."""
        pending = dict(enumerate(keys))
        problems: list[str] = []
        deadline = time.monotonic() + timeout_s
        done_at = time.monotonic()
        while pending:
            order = list(pending)
            job = self.job(
                peer,
                peer.get,
                [pending[i] for i in order],
                concurrency=self.settings.inflight,
                count=len(order),
                seconds=max(1.0, deadline - time.monotonic()),
                ok=(200,),
                bodies=True,
            )
            result = self.run(job)
            done_at = result["t_end"]
            for position, status, body in result["bodies"]:
                index = order[position]
                if status != 200:
                    continue
                count = peer.parse_int(body.encode("latin-1"))
                if count == expected[index]:
                    pending.pop(index, None)
                elif count > expected[index]:
                    problems.append(f"{keys[index]}: {count} > expected {expected[index]}")
                    pending.pop(index, None)
            if pending and time.monotonic() > deadline:
                problems.append(f"{len(pending)} counter(s) not at their total in {timeout_s} s")
                break
            if pending:
                time.sleep(0.01)
        return done_at, problems


def _finish(
    result: Result,
    before: dict[str, procstats.Sample],
    after: dict[str, procstats.Sample],
    calls: int,
) -> Result:
    result.calls = calls
    result.cpu_s = procstats.cpu_delta(before, after)
    if calls:
        result.cpu_ms_per_call = {r: s * 1000 / calls for r, s in result.cpu_s.items()}
    result.rss_mib = {r: s.rss_mib for r, s in after.items()}
    result.hwm_mib = {r: s.hwm_mib for r, s in after.items()}
    return result


def _closed_loop(
    bench: Bench,
    peer: Peer,
    scenario: str,
    make: Callable[[str], Request],
    *,
    keys: list[str],
    concurrency: int,
) -> Result:
    s = bench.settings
    warm = bench.job(
        peer, make, keys, concurrency=concurrency, count=s.warmup_calls, seconds=s.warmup_s
    )
    bench.run(warm)
    job = bench.job(
        peer, make, keys, concurrency=concurrency, count=s.max_calls, seconds=s.seconds, ok=(200,)
    )
    pids = bench.pids(peer)
    before = procstats.sample_all(pids)
    out = bench.run(job)
    after = procstats.sample_all(pids)
    result = Result(scenario, peer.name, seconds=out["elapsed_s"], throughput=out["rate"])
    result.latency_ms = out["latency_ms"]
    result.statuses = out["statuses"]
    result.errors = out["errors"]
    return _finish(result, before, after, out["ok"])


def _add(wait: bool) -> Callable[[Peer], Callable[[str], Request]]:
    def bind(peer: Peer) -> Callable[[str], Request]:
        return lambda key: peer.add(key, 1, wait=wait)

    return bind


def sequential(bench: Bench, peer: Peer) -> Result:
    key = [bench.fresh("seq")]
    return _closed_loop(bench, peer, "sequential", _add(True)(peer), keys=key, concurrency=1)


def keys_1000(bench: Bench, peer: Peer) -> Result:
    prefix = bench.fresh("keys")
    keys = [f"{prefix}-{i}" for i in range(bench.settings.keys)]
    return _closed_loop(
        bench, peer, "keys-1000", _add(True)(peer), keys=keys, concurrency=bench.settings.inflight
    )


def hot_key(bench: Bench, peer: Peer) -> Result:
    key = [bench.fresh("hot")]
    return _closed_loop(
        bench, peer, "hot-key", _add(True)(peer), keys=key, concurrency=bench.settings.inflight
    )


def chain(bench: Bench, peer: Peer) -> Result:
    prefix = bench.fresh("chain")
    keys = [f"{prefix}-{i}" for i in range(bench.settings.keys)]
    return _closed_loop(
        bench, peer, "chain", peer.chain, keys=keys, concurrency=bench.settings.chain_inflight
    )


def one_way(bench: Bench, peer: Peer) -> Result:
    s = bench.settings
    add = _add(False)(peer)

    def send(keys: list[str], count: int, seconds: float) -> dict[str, Any]:
        job = bench.job(
            peer, add, keys, concurrency=s.inflight, count=count, seconds=seconds, per_key=True
        )
        return bench.run(job)

    warm_keys = [f"{bench.fresh('oneway-warm')}-{i}" for i in range(s.keys)]
    warm = send(warm_keys, s.warmup_calls, s.warmup_s)
    bench.wait_visible(peer, warm_keys, warm["ok_per_key"], s.visible_timeout_s)
    prefix = bench.fresh("oneway")
    keys = [f"{prefix}-{i}" for i in range(s.keys)]
    pids = bench.pids(peer)
    before = procstats.sample_all(pids)
    out = send(keys, s.max_calls, s.seconds)
    visible_at, problems = bench.wait_visible(peer, keys, out["ok_per_key"], s.visible_timeout_s)
    after = procstats.sample_all(pids)
    visible_s = visible_at - out["t_start"]
    result = Result("one-way", peer.name, seconds=out["elapsed_s"], throughput=out["rate"])
    result.latency_ms = out["latency_ms"]
    result.statuses = out["statuses"]
    result.errors = out["errors"] + problems
    result.extra = {
        "visible_s": visible_s,
        "end_to_end_rate": out["ok"] / visible_s if visible_s > 0 else 0.0,
    }
    return _finish(result, before, after, out["ok"])


def delayed(bench: Bench, peer: Peer) -> Result:
    s = bench.settings

    def schedule(keys: list[str]) -> dict[str, Any]:
        job = bench.job(
            peer, peer.schedule_tick, keys, concurrency=len(keys), count=len(keys), seconds=30.0
        )
        return bench.run(job)

    def collect(keys: list[str]) -> tuple[dict[str, list[float]], list[str]]:
        found: dict[str, list[float]] = {}
        deadline = time.monotonic() + 30.0
        while len(found) < len(keys) and time.monotonic() < deadline:
            waiting = [k for k in keys if k not in found]
            job = bench.job(
                peer,
                peer.lateness,
                waiting,
                concurrency=s.inflight,
                count=len(waiting),
                seconds=30.0,
                ok=(200,),
                bodies=True,
            )
            for index, status, body in bench.run(job)["bodies"]:
                if status == 200:
                    values = peer.parse_lateness(body.encode("latin-1"))
                    if values:
                        found[waiting[index]] = values
            if len(found) < len(keys):
                time.sleep(0.05)
        problems = [] if len(found) == len(keys) else [f"{len(keys) - len(found)} tick(s) lost"]
        return found, problems

    warm_keys = [f"{bench.fresh('tick-warm')}-{i}" for i in range(3)]
    schedule(warm_keys)
    collect(warm_keys)
    prefix = bench.fresh("tick")
    keys = [f"{prefix}-{i}" for i in range(s.ticks)]
    pids = bench.pids(peer)
    before = procstats.sample_all(pids)
    out = schedule(keys)
    found, problems = collect(keys)
    after = procstats.sample_all(pids)
    lateness = [values[0] for values in found.values()]
    extra_ticks = sum(len(values) - 1 for values in found.values())
    if extra_ticks:
        problems.append(f"{extra_ticks} tick(s) delivered more than once")
    result = Result("delayed", peer.name, seconds=out["elapsed_s"])
    result.latency_ms = out["latency_ms"]  # of the schedule requests
    result.statuses = out["statuses"]
    result.errors = out["errors"] + problems
    late = percentiles(lateness)
    result.extra = {
        "ticks": len(lateness),
        "lateness_p50_ms": late["p50"],
        "lateness_p99_ms": late["p99"],
        "lateness_max_ms": late["max"],
        "lateness_min_ms": min(lateness) if lateness else 0.0,
    }
    return _finish(result, before, after, out["ok"])


async def _first_accept(host: str, port: int, raw: bytes, timeout_s: float) -> float:
    """Send ``raw`` on a new connection every ``POLL_S`` until it is answered 2xx; that
    moment (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = Client(host, port)
        try:
            await client.connect()
            remaining = max(0.001, deadline - time.monotonic())
            status, _ = await asyncio.wait_for(client.send(raw), remaining)
            if 200 <= status < 300:
                return time.monotonic()
        except (OSError, ConnectionLostError, TimeoutError):
            pass
        finally:
            client.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no request accepted within {timeout_s} s")
        await asyncio.sleep(POLL_S)


def _restart_and_time(peer: Peer, probe: Request, timeout_s: float) -> tuple[float, float]:
    """Restart the (dead) server; (monotonic restart time, monotonic first-accept time)."""
    url = urlsplit(peer.ingress)
    assert url.hostname is not None
    assert url.port is not None
    raw = serialize(probe.method, probe.path, probe.headers, probe.body, url.hostname)

    async def go() -> tuple[float, float]:
        restarted = time.monotonic()
        peer.restart_server()
        return restarted, await _first_accept(url.hostname or "", url.port or 0, raw, timeout_s)

    return asyncio.run(go())


def _preload_by_ingress(bench: Bench, peer: Peer, result: Result) -> list[int]:
    """Counters 0..entities-1 by one-way adds, in chunks, each chunk left to be applied before
    the next is sent, until ``preload_budget_s`` runs out; the keys reached, in order."""
    s = bench.settings
    deadline = time.monotonic() + s.preload_budget_s
    reached: list[int] = []
    sent = 0
    started = time.monotonic()
    while sent < s.entities and time.monotonic() < deadline:
        indexes = range(sent, min(s.entities, sent + s.preload_chunk))
        job = bench.job(
            peer,
            _add(False)(peer),
            [str(i) for i in indexes],
            concurrency=s.inflight,
            count=len(indexes),
            seconds=deadline - time.monotonic(),
            per_key=True,
        )
        out = bench.run(job)
        result.errors += out["errors"]
        done = [i for i, ok in zip(indexes, out["ok_per_key"], strict=True) if ok]
        reached += done
        sent += len(indexes)
        # Let the chunk be applied: the last keys sent answer 1 once their add ran.
        tail = [str(i) for i in done[-s.inflight :]]
        _, problems = bench.wait_visible(peer, tail, [1] * len(tail), s.visible_timeout_s)
        result.errors += [f"preload: {p}" for p in problems]
    result.extra["preload_rate"] = len(reached) / (time.monotonic() - started)
    return reached


def _load_entities(bench: Bench, peer: Peer, result: Result, probe: Request) -> list[int]:
    """``entities`` counters at 1 in the peer's state; the keys reached. The server is killed
    and restarted around a data-dir preload (timed: ``first_restart_s``)."""
    s = bench.settings
    peer.kill_server()
    loaded = peer.preload(s.entities)
    restarted, serving = _restart_and_time(peer, probe, s.visible_timeout_s)
    result.extra["first_restart_s"] = serving - restarted
    reached = list(range(s.entities)) if loaded else _preload_by_ingress(bench, peer, result)
    result.extra["entities"] = len(reached)
    result.extra["preloaded"] = "data dir" if loaded else "one-way adds"
    sample = [str(i) for i in reached[:: max(1, len(reached) // 200)]]
    _, problems = bench.wait_visible(peer, sample, [1] * len(sample), s.visible_timeout_s)
    result.errors += [f"entities: {p}" for p in problems]
    return reached


def recovery(bench: Bench, peer: Peer) -> Result:
    s = bench.settings
    result = Result("recovery", peer.name)
    run = bench.fresh("rec")
    # 1. The entities: written into the stopped data dir, or sent as one-way adds.
    reached = set(_load_entities(bench, peer, result, peer.add(f"{run}-up", 1, wait=False)))
    pids = peer.processes()
    server_before = procstats.sample(pids["server"])
    result.extra["server_rss_before_kill_mib"] = server_before.rss_mib if server_before else 0.0
    # 2. The backlog over the first keys, then kill -9 right after the last add is accepted.
    keys = [str(i) for i in range(min(s.entities, s.keys))]
    job = bench.job(
        peer,
        _add(False)(peer),
        keys,
        concurrency=s.inflight,
        count=s.backlog,
        seconds=s.visible_timeout_s,
        per_key=True,
    )
    out = bench.run(job)
    peer.kill_server()
    pending = getattr(peer, "pending_messages", None)
    if pending is not None:
        result.extra["pending_at_kill"] = pending()
    result.statuses = out["statuses"]
    result.errors += out["errors"]
    result.extra["backlog"] = out["ok"]
    expected = [(i in reached) + ok for i, ok in enumerate(out["ok_per_key"])]
    # 3. Restart: until it serves again, and until the backlog drained.
    service_before = procstats.sample(pids["service"])
    probe = peer.add(f"{run}-probe", 1, wait=False)
    restarted, serving = _restart_and_time(peer, probe, s.visible_timeout_s)
    drained, problems = bench.wait_visible(peer, keys, expected, s.visible_timeout_s)
    result.errors += problems
    result.extra["serving_s"] = serving - restarted
    result.extra["drained_s"] = drained - restarted
    result.seconds = drained - restarted
    # 4. The restarted server: memory, and CPU since it started (it is a new process).
    after = procstats.sample_all(peer.processes())
    result.rss_mib = {r: x.rss_mib for r, x in after.items()}
    result.hwm_mib = {r: x.hwm_mib for r, x in after.items()}
    if "server" in after:
        result.cpu_s["server"] = after["server"].cpu_s
    if service_before is not None and "service" in after:
        result.cpu_s["service"] = after["service"].cpu_s - service_before.cpu_s
    result.calls = out["ok"]
    if out["ok"]:
        result.cpu_ms_per_call = {r: c * 1000 / out["ok"] for r, c in result.cpu_s.items()}
    return result


SCENARIOS: dict[str, Callable[[Bench, Peer], Result]] = {
    "sequential": sequential,
    "keys-1000": keys_1000,
    "hot-key": hot_key,
    "one-way": one_way,
    "chain": chain,
    "delayed": delayed,
    "recovery": recovery,
}


def run_all(
    peers: list[Peer],
    scenarios: list[str],
    settings: Settings,
    loader: Loader,
    progress: Callable[[Result], None],
) -> list[Result]:
    """Every scenario (in SCENARIOS order, recovery last) for every peer, interleaved."""
    bench = Bench(loader, settings)
    results: list[Result] = []
    ordered = [name for name in SCENARIOS if name in scenarios]
    for turn, name in enumerate(ordered):
        rotation = turn % len(peers)
        for peer in peers[rotation:] + peers[:rotation]:
            started = time.monotonic()
            try:
                result = SCENARIOS[name](bench, peer)
            except Exception as exc:  # noqa: BLE001 - one failure must not lose the whole run
                traceback.print_exc()
                result = Result(name, peer.name, errors=[f"{type(exc).__name__}: {exc}"])
            result.extra["wall_s"] = time.monotonic() - started
            results.append(result)
            progress(result)
    return results
