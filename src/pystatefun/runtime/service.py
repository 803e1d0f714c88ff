"""``Runtime``: the embedded event-driven database for one module, in one process.

It wires the parts together: a storage engine (the data dir's, unless another is given), the
dispatcher with its routes, invoker and embedded functions, the timer service, and the module's
connectors, built through ``pystatefun.io.registry`` by kind (the runtime names none of them)
and handed ``Ingestion``, the runtime as connectors see it.

Start-up opens the data dir and recovers: every message still in a mailbox is scheduled again,
timers resume, and a summary is logged. Shutdown (SIGTERM/SIGINT in ``pystatefun run``) stops
taking messages, lets running invocations finish and commit (up to the grace period; anything
unfinished is simply not committed and runs again after a restart), then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import final

from pystatefun.errors import DataDirError
from pystatefun.http.front_door import FrontDoor, server_tls
from pystatefun.io.api import ConnectorContext, Egress, Ingress
from pystatefun.io.registry import build_egress, build_ingress
from pystatefun.module import EmbeddedEndpoint, Module
from pystatefun.runtime.colocated import ColocatedServers
from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.egress import EgressRoutes
from pystatefun.runtime.embedded import EmbeddedFunctions
from pystatefun.runtime.ingestion import Ingestion
from pystatefun.runtime.invoker import RemoteInvoker
from pystatefun.runtime.metrics import GROUP_SIZE_BOUNDS, RuntimeMetrics, bucketed
from pystatefun.runtime.observation import Observation
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.replies import ReplyWaiters
from pystatefun.runtime.routes import Routes
from pystatefun.runtime.serving import Serving
from pystatefun.runtime.timers import TimerService
from pystatefun.store import DataDir, SqliteEngine, Step, StorageEngine

__all__ = ["Runtime"]

_log = logging.getLogger("pystatefun.runtime")
_PURGE_INTERVAL_S = 60.0


@final
class Runtime:
    """Runs ``module`` on the data dir of ``options`` (or on ``engine``, when given: storage
    other than a data dir, such as ``pystatefun.store.MemoryEngine`` in tests)."""

    def __init__(
        self,
        module: Module,
        options: RuntimeOptions | None = None,
        *,
        engine: StorageEngine | None = None,
    ) -> None:
        self.module = module
        self.options = options or RuntimeOptions()
        self._data_dir: DataDir | None = None
        if engine is None:
            self._data_dir = DataDir(self.options.data_dir)
            engine = SqliteEngine(
                self._data_dir,
                durability=self.options.durability,
                clock_ms=self.options.clock_ms,
                cache_mib=self.options.cache_mib,
            )
        self._store: StorageEngine = engine
        self._replies = ReplyWaiters()
        # Co-located endpoints are called like remote ones, at the address of their server.
        self._colocated = ColocatedServers(module, self.options.data_dir)
        # Embedded functions are imported now: a module that cannot load fails here.
        self._embedded = {
            id(endpoint): EmbeddedFunctions(endpoint, module.source)
            for endpoint in module.endpoints
            if isinstance(endpoint, EmbeddedEndpoint)
        }
        self._metrics = RuntimeMetrics()
        self._invoker = RemoteInvoker(metrics=self._metrics)
        tls = None if self.options.tls is None else server_tls(*self.options.tls)
        #: Who may use the connectors' ports (and, with its own token, the admin port).
        self.front_door = FrontDoor(self.options.ingress_token, tls)
        context = self._connector_context(shared_store=engine.shared)
        self._ingresses: list[Ingress] = [build_ingress(s, context) for s in module.ingresses]
        self._egresses: list[Egress] = [build_egress(s, context) for s in module.egresses]
        self._egress_routes = EgressRoutes(self._egresses)
        self._dispatcher = Dispatcher(
            self._store, routes=Routes(self._colocated.module, self._embedded),
            invoker=self._invoker, egress=self._egress_routes, options=self.options,
            replies=self._replies, on_step=self._after_step, on_fatal=self._fail,
            data_dir=None if self._data_dir is None else self._data_dir.path, metrics=self._metrics,
        )  # fmt: skip
        self._timers = TimerService(
            self._store, self.options.clock_ms, self._dispatcher.mailboxes.deliver, self._metrics
        )
        self._serving = Serving(self._dispatcher, self._timers, on_fatal=self._fail)
        #: The runtime as its connectors see it.
        self.handle = Ingestion(
            self._store,
            dispatcher=self._dispatcher,
            replies=self._replies,
            options=self.options,
            stopping=lambda: self._stopping,
            on_fatal=self._fail,
            watch_serving=self._serving.watch,
            metrics=self._metrics,
        )
        self._stop = asyncio.Event()
        #: Set when the runtime cannot go on (the store failed to commit); ``failure`` says why.
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._phase = "not started"  # recovering, serving, stopping, stopped
        self.recovered: dict[str, int] = {}

    def _connector_context(self, *, shared_store: bool) -> ConnectorContext:
        options = self.options
        return ConnectorContext(
            module_file=self.module.source,
            host=options.host,
            ingress_max_bytes=options.ingress_max_bytes,
            http_limits=options.http_limits,
            port_offset=options.port_offset,
            shared_store=shared_store,
            front_door=self.front_door,
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, recover, start the function servers and connectors. If any of it
        fails, everything started is stopped again, and a data dir this start created is
        removed: a failed start leaves nothing behind."""
        self._phase = "recovering"
        try:
            if self._data_dir is None:
                await self._start()
            else:
                with self._data_dir.removed_on_failure():
                    await self._start()
        except BaseException:
            self._phase = "stopped"
            raise
        self._phase = "serving"

    async def _start(self) -> None:
        await self._store.open(self.options.key_groups)
        try:
            self._store.listen(self._serving)
            self._store.answer_asked(self.handle.answer_asked)
            await self._recover()
            await self._colocated.start()  # function servers listen before the first batch
            await self._start_serving()
        except BaseException:
            self._stopping = True
            await self._stop_serving()  # what did start stops; the store closes
            raise

    async def _start_serving(self) -> None:
        self._dispatcher.start()
        self._tasks = [
            asyncio.create_task(self._timers.run(self._stop), name="pystatefun-timers"),
            asyncio.create_task(self._housekeeping(), name="pystatefun-housekeeping"),
        ]
        self._check_ports()
        for connector in (*self._egresses, *self._ingresses):
            await connector.start(self.handle)

    def _check_ports(self) -> None:
        """Two connectors on one port: refused before either listens."""
        first: dict[int, str] = {}
        for connector in (*self._ingresses, *self._egresses):
            name = type(connector).__name__
            for port in connector.ports:
                if port in first:
                    raise DataDirError(
                        f"{self.module.source}: {first[port]} and {name} both ask for port "
                        f"{port}; give each its own port (or 0 for a free one)"
                    )
                first[port] = name

    async def _recover(self) -> None:
        # Not the state table: counting it reads all of it, which slows the start-up (and
        # fills the page cache) in proportion to the number of entities.
        counts = await self._store.counts(("timers", "egress", "dead_letters"))
        pending = await self._store.pending_counts()
        for address, count in pending.items():
            self._dispatcher.mailboxes.add_unloaded(address, count)
        self.recovered = {
            "pending_messages": sum(pending.values()),
            "addresses": len(pending),
            "timers": counts["timers"],
            "dead_letters": counts["dead_letters"],
            "egress_records": counts["egress"],
        }
        _log.info(
            "opened %s: recovered %d pending message(s) for %d address(es), %d timer(s), "
            "%d dead letter(s), %d unread egress record(s)",
            self.options.data_dir,
            *self.recovered.values(),
        )

    async def stop(self) -> None:
        """Graceful shutdown; safe to call more than once."""
        if self._stopping:
            return
        self._stopping = True
        self._phase = "stopping"
        await self._stop_serving()
        self._phase = "stopped"
        _log.info("stopped; %s", self.statistics())

    async def _stop_serving(self) -> None:
        await self._dispatcher.stop(self.options.shutdown_grace_s)
        await self._colocated.stop()  # once no batch is in flight to them
        await self._invoker.close()
        for embedded in self._embedded.values():
            embedded.close()
        self._replies.abandon_all()
        for ingress in self._ingresses:
            await ingress.stop()
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._serving.stop()
        for egress in self._egresses:
            await egress.stop()
        await self._store.close()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _housekeeping(self) -> None:
        """Pick up re-driven messages; drop expired idempotency keys and state values (so the
        state of an address that is never invoked again does not outlive its TTL on disk)."""
        since_purge = 0.0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.options.rescan_interval_s)
            if self._stop.is_set():
                return
            since_purge += self.options.rescan_interval_s
            try:
                await self._dispatcher.rescan()
                if since_purge >= _PURGE_INTERVAL_S and self._store.unwritable is None:
                    since_purge = 0.0  # (a full disk: the purge waits for room, quietly)
                    await self._store.purge_expired()
            except Exception:  # noqa: BLE001 - housekeeping must not die; the next round retries
                _log.exception("housekeeping failed; retrying in the next round")

    def _fail(self, reason: str) -> None:
        """Memory is ahead of the disk and cannot catch up: say so once; the owner stops."""
        if self.failure is None:
            self.failure = reason
            _log.critical("%s; stopping: a restart recovers from the last commit", reason)
            self.failed.set()

    def _after_step(self, step: Step) -> None:
        if step.timer_ops:
            self._timers.wake()
        if step.egress:
            self._egress_routes.committed(step.egress)

    def listening(self) -> list[tuple[str, str]]:
        """Where the connectors listen, once started: ``("ingress" | "egress", url)`` each."""
        return [
            (role, connector.url)
            for role, connectors in (("ingress", self._ingresses), ("egress", self._egresses))
            for connector in connectors
            if connector.url is not None
        ]

    @property
    def ingress_url(self) -> str | None:
        """The URL of the first ingress that listens (for tests and examples)."""
        return next((url for role, url in self.listening() if role == "ingress"), None)

    @property
    def egress_url(self) -> str | None:
        """The URL of the first egress that listens."""
        return next((url for role, url in self.listening() if role == "egress"), None)

    @property
    def engine(self) -> StorageEngine:
        """The storage the runtime runs on."""
        return self._store

    @property
    def readiness(self) -> tuple[bool, str]:
        """Whether it serves (``/ready``), and what it is doing: recovering, serving,
        stopping, stopped, or why it failed."""
        if self.failure is not None:
            return False, f"failed: {self.failure}"
        if self._phase == "serving" and (unwritable := self._store.unwritable) is not None:
            return False, f"degraded: {unwritable}"
        return self._phase == "serving", self._phase

    async def observe(self) -> Observation:
        """Its figures now, for ``/metrics``."""
        counts: dict[str, int] = {}
        if self._phase == "serving":
            try:
                counts = await self._store.counts(("timers", "dead_letters"))
            except Exception:  # noqa: BLE001 - the store closing meanwhile: leave them out
                _log.debug("the store's counts were not available", exc_info=True)
        connectors = (*self._ingresses, *self._egresses)
        readings = (*self._store.readings(), *(r for c in connectors for r in c.readings()))
        dispatched, engine = self._dispatcher.statistics(), self._store.statistics()
        return Observation(
            functions=dict(self._metrics.functions),
            load=self._dispatcher.load_by_type(),
            step_commit=self._metrics.step_commit,
            group_commit=bucketed(dict(engine.group_sizes), GROUP_SIZE_BOUNDS),
            cache_hits=dispatched["state_cache_hits"],
            cache_misses=dispatched["state_cache_misses"],
            dead_lettered=dispatched["dead_lettered_batches"],
            delayed_pending=counts.get("timers"),
            dead_letters=counts.get("dead_letters"),
            readings=readings,
        )

    def statistics(self) -> dict[str, int]:
        engine = self._store.statistics()
        return {
            **self._dispatcher.statistics(),
            "embedded_batches": sum(e.batches for e in self._embedded.values()),
            "timers_fired": self._timers.fired,
            "colocated_restarts": self._colocated.restarts,
            "commits": engine.commits,
            "steps": engine.steps,
        }
