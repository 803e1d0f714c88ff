"""The cluster storage engine: partitions of NATS JetStream streams, one atomic batch per commit.

Each worker serves the partitions it owns (``_ownership``: dealt over the live workers) and
reads into its view, as the streams grow (``_tail``), the records of the kinds every worker
needs (markers, egress records, dead letters, positions, relay receipts) of every partition,
and everything else only of the partitions it owns: it reads a partition's state and mailboxes
once it has claimed it, before it serves it, and forgets them when it releases it. It claims a
partition by writing the partition's progress marker, fenced on the marker's last sequence;
from then on every batch it publishes carries the markers of the partitions its steps belong
to, fenced the same way. A worker whose partition another one claimed since cannot commit:
the server refuses the whole batch. Per stream, one batch is in flight at a time; steps queued
meanwhile go into the next one (group commit), up to the batch limit of the server. Messages to
addresses of other workers' partitions of the same stream are appended to their mailboxes in
the same batch; their owner reads them from the stream. Messages to another stream's
partitions go through an outbox (``_relay``).

A publish that gets no acknowledgement may have committed: the engine reads the first
partition's marker, which names the last batch stored, and publishes again only when that is
not this one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, final

from nats.js.errors import APIError

from pystatefun.errors import ClusterStorageError
from pystatefun.reading import Reading
from pystatefun.store.contents import Contents
from pystatefun.store.engine import EngineStatistics, OwnershipListener
from pystatefun.store.jetstream._blocking import connect
from pystatefun.store.jetstream._commits import Committer
from pystatefun.store.jetstream._connection import UNREACHABLE
from pystatefun.store.jetstream._directory import Directory, read_directory, write_directory
from pystatefun.store.jetstream._forwarding import Forwarding
from pystatefun.store.jetstream._housekeeping import Housekeeping
from pystatefun.store.jetstream._layout import ClusterLayout, check_cluster_name
from pystatefun.store.jetstream._membership import Membership
from pystatefun.store.jetstream._ownership import Ownership
from pystatefun.store.jetstream._readers import Readers
from pystatefun.store.jetstream._relay import Relay, in_flight
from pystatefun.store.jetstream._stepping import Stepping
from pystatefun.store.jetstream._view import ClusterView
from pystatefun.store.jetstream._writers import Writers
from pystatefun.store.records import InboxMessage, StateValue
from pystatefun.types import Address

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["DEFAULT_PARTITIONS", "JetStreamEngine"]

_log = logging.getLogger("pystatefun.store")

DEFAULT_PARTITIONS = 16


@final
class JetStreamEngine(Stepping, Housekeeping):
    """A ``StorageEngine`` on a NATS JetStream cluster (``servers``), named ``cluster``;
    ``streams`` is how many streams a new cluster spreads its partitions over (None: one, or
    the cluster's own number)."""

    shared = True  # every worker of the cluster serves its share of it
    #: A stream that takes no writes stalls the step that writes (retried until it is
    #: acknowledged, see ``_commits``); a refusal for good stops the worker.
    unwritable: str | None = None

    def __init__(
        self,
        servers: Sequence[str],
        *,
        cluster: str,
        worker: str,
        clock_ms: Callable[[], int],
        partitions: int = DEFAULT_PARTITIONS,
        streams: int | None = None,
        replicas: int = 3,
        batch_limit: int = 1000,
        publish_timeout: float = 3.0,
        commit_deadline: float = 60.0,
        heartbeat_s: float = 0.5,
        lease_s: float = 2.5,
    ) -> None:
        self.servers = list(servers)
        self.cluster = check_cluster_name(cluster)
        self.worker = worker
        self.where = f"cluster {cluster!r} at {','.join(self.servers)}"
        self._clock_ms = clock_ms
        self._partitions = partitions
        self._streams = streams
        self._replicas = replicas
        self._batch_limit = batch_limit
        # Room left for the state writes, sent messages and markers of the step (one batch).
        self.max_step_messages = batch_limit // 2
        self._publish_timeout = publish_timeout
        self._commit_deadline = commit_deadline
        self._heartbeat_s, self._lease_s = heartbeat_s, lease_s
        self._instance = uuid.uuid4().hex[:10]  # this process's batches start with it
        self._nc: Client | None = None
        self._layout: ClusterLayout | None = None
        self._view: ClusterView | None = None
        self._writers: Writers | None = None
        self._ownership: Ownership | None = None
        self._forwarding: Forwarding | None = None
        self._membership: Membership | None = None
        self._relay: Relay | None = None
        self._readers: Readers | None = None
        self._instance_id: str | None = None
        self._next_id = -1
        self._provisional: dict[int, str] = {}  # provisional id -> subject, until consumed
        self._stored: dict[int, int] = {}  # provisional id -> seq, once committed
        self._own: set[int] = set()
        self._outboxed: dict[int, list[int]] = {}
        self._closed_statistics = EngineStatistics(0, 0)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self, key_groups: int) -> None:
        """Connect, make the cluster's streams if new, read them, claim this worker's share.
        While the servers are away or the stream has no leader (electing one), try again, up
        to the commit deadline."""
        give_up, delay = time.monotonic() + self._commit_deadline, 0.2
        while True:
            self._nc = await connect(self.servers, reconnect=True)
            try:
                await self._open(key_groups)
                return
            except UNREACHABLE as exc:
                await self.close()
                if time.monotonic() > give_up:
                    raise ClusterStorageError(
                        f"cluster {self.cluster!r} at {','.join(self.servers)} did not answer "
                        f"for {self._commit_deadline:.0f} s ({type(exc).__name__}: {exc}); "
                        "check that its NATS servers run and have a JetStream leader"
                    ) from exc
                _log.warning("cluster %r cannot be opened yet (%s: %s); retrying",
                             self.cluster, type(exc).__name__, exc)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except APIError as exc:  # the servers refused: settings, permissions, limits
                await self.close()
                raise ClusterStorageError(
                    f"cluster {self.cluster!r} at {','.join(self.servers)} refused to open: "
                    f"{exc}; check the NATS servers' JetStream settings and limits"
                ) from exc
            except BaseException:
                await self.close()
                raise

    async def _open(self, key_groups: int) -> None:
        assert self._nc is not None
        js = self._nc.jetstream(timeout=10)
        directory = await self._directory(js, key_groups)
        self._instance_id = directory.instance_id
        layout = self._layout = directory.layout(self.cluster)
        view = self._view = ClusterView(key_groups, layout.streams)
        markers: dict[int, int] = {}
        self._writers = writers = Writers(layout, [Committer(
            self._nc, layout, view, stream=stream, markers=markers, worker=self.worker,
            instance=self._instance, clock_ms=self._clock_ms, provisional=self._provisional,
            batch_limit=self._batch_limit, publish_timeout=self._publish_timeout,
            commit_deadline=self._commit_deadline,
        ) for stream in range(layout.streams)])  # fmt: skip
        await writers.start(js, replicas=self._replicas)
        self._own.clear()
        self._membership = membership = Membership(
            self._nc, cluster=self.cluster, worker=self.worker, instance=self._instance,
            on_change=lambda: self.ownership.wake(),  # noqa: PLW0108 - not made yet
            report=self._report,
            heartbeat_s=self._heartbeat_s,
            lease_s=self._lease_s,
        )  # fmt: skip
        self._ownership = ownership = Ownership(
            layout, writers, membership, forget=self._forget,
            read=lambda partitions: self.readers.read(partitions),  # noqa: PLW0108 - not made yet
            unread=lambda partitions: self.readers.unread(partitions),  # noqa: PLW0108
        )  # fmt: skip
        self._relay = relay = Relay(layout, view, writers, serving=lambda: ownership.serving,
                                    arrival=ownership.arrival)  # fmt: skip
        ownership.on_claimed = relay.wake
        self._readers = Readers(js, layout, view, writers=writers, ownership=ownership,
                                relay=relay, busy=lambda: writers.busy)  # fmt: skip
        await self._readers.start()
        await ownership.start()
        relay.start()
        self._forwarding = Forwarding(self._nc, layout, ownership, commit=self.commit,
                                      commit_here=self._commit_forwarded)  # fmt: skip
        await self._forwarding.start()

    async def _directory(self, js: JetStreamContext, key_groups: int) -> Directory:
        """The cluster's directory, written first if the cluster is new; refused if it was
        made with other key groups or another number of streams than asked for."""
        directory = await read_directory(js, self.cluster, replicas=self._replicas)
        if directory is None:
            directory = await write_directory(js, self.cluster, key_groups=key_groups,
                                              partitions=self._partitions, generation=1,
                                              streams=self._streams or 1,
                                              after=None)  # fmt: skip
        if directory.key_groups != key_groups:
            raise ClusterStorageError(
                f"cluster {self.cluster!r} was made with {directory.key_groups} key groups, "
                f"not {key_groups}: start the worker with the cluster's number"
            )
        if self._streams is not None and directory.streams != self._streams:
            raise ClusterStorageError(
                f"cluster {self.cluster!r} was made with {directory.streams} stream(s), not "
                f"{self._streams}: leave --streams out, or give the cluster's number (a "
                "savepoint restored into a new cluster can have another)"
            )
        return directory

    def _report(self) -> dict[str, object]:
        serving = [] if self._ownership is None else sorted(self._ownership.serving)
        pending = 0 if self._readers is None else self._readers.pending
        return {"serving": serving, "pending": pending}

    def _forget(self, partitions: set[int]) -> None:
        """Released partitions: their messages are no longer this worker's own (should they
        come back, it reads them from the stream like anyone else's)."""
        layout, subject_of = self.layout, self.view.subject_of
        self._own = {
            seq for seq in self._own
            if seq not in subject_of or layout.parse(subject_of[seq])[1] not in partitions
        }  # fmt: skip

    async def close(self) -> None:
        """Stop moving partitions, commit what is queued, leave the cluster, disconnect."""
        if self._forwarding is not None:
            await self._forwarding.stop()  # the steps forwarded here are committed first
            self._forwarding = None
        if self._ownership is not None:
            await self._ownership.stop()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        if self._writers is not None:
            await self._writers.stop()
            self._closed_statistics = self._writers.statistics()
            self._writers = None
        if self._membership is not None:
            await self._membership.stop()  # after the last commit: the others claim at once
            self._membership = None
        if self._readers is not None:
            await self._readers.stop()
            self._readers = None
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    def owns(self, address: Address) -> bool:
        return self.layout.partition_of(address.id) in self.ownership.serving

    def owns_position(self, source: str, key: str) -> bool:
        return self.layout.partition_of_key(source, key) in self.ownership.serving

    def listen(self, listener: OwnershipListener) -> None:
        self.ownership.listener = listener

    def answer_asked(self, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        self.forwarding.answer_asked(answer)

    async def ask_owner(self, address: Address, request: bytes, *, timeout_s: float) -> bytes:
        home = self.layout.partition_of(address.id)
        return await self.forwarding.ask(home, request, timeout_s=timeout_s)

    @property
    def forwarding(self) -> Forwarding:
        assert self._forwarding is not None, "the store is not open"
        return self._forwarding

    @property
    def ownership(self) -> Ownership:
        assert self._ownership is not None, "the store is not open"
        return self._ownership

    @property
    def layout(self) -> ClusterLayout:
        assert self._layout is not None, "the store is not open"
        return self._layout

    @property
    def instance_id(self) -> str:
        assert self._instance_id is not None, "the store is not open"
        return self._instance_id

    @property
    def view(self) -> ClusterView:
        assert self._view is not None, "the store is not open"
        return self._view

    @property
    def writers(self) -> Writers:
        assert self._writers is not None, "the store is not open"
        return self._writers

    @property
    def readers(self) -> Readers:
        assert self._readers is not None, "the store is not open"
        return self._readers

    @property
    def relay(self) -> Relay:
        assert self._relay is not None, "the store is not open"
        return self._relay

    def readings(self) -> list[Reading]:
        ownership, membership = self._ownership, self._membership
        owned = 0 if ownership is None else len(ownership.serving)
        beats = 0 if membership is None else membership.beats
        pending = 0 if self._readers is None else self._readers.pending
        return [
            Reading("cluster_partitions_owned", "Cluster partitions this worker serves.",
                    "gauge", owned),
            Reading("cluster_heartbeats_total", "Heartbeats this worker sent: each renews its "
                    "lease on its partitions.", "counter", beats),
            Reading("cluster_records_pending", "Records of the streams this worker reads that "
                    "it has still to read.", "gauge", pending),
        ]  # fmt: skip

    def statistics(self) -> EngineStatistics:
        writers = self._writers
        return self._closed_statistics if writers is None else writers.statistics()

    @property
    def backlog(self) -> int:
        writers = self._writers
        return 0 if writers is None else writers.backlog

    # --- reads -------------------------------------------------------------------------------

    def _excluded(self, in_memory: Iterable[int], foreign: bool) -> set[int]:
        excluded = {self._stored.get(i, i) for i in in_memory}
        excluded.update(self._stored.get(i, i) for i in self.writers.undurable_consumed())
        if foreign:
            excluded.update(self._own)
        return excluded

    async def pending_counts(self, *, foreign: bool = False) -> dict[Address, int]:
        excluded = self._excluded((), foreign)
        owns = self.owns
        counts = {target: sum(1 for s in seqs if s not in excluded)
                  for target, seqs in self.view.by_target.items() if owns(target)}  # fmt: skip
        return {target: count for target, count in counts.items() if count}

    async def read_batch(
        self, target: Address, limit: int, in_memory: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        excluded = self._excluded(in_memory, foreign)
        view = self.view
        found: list[InboxMessage] = []
        for seq in view.by_target.get(target, {}):
            if len(found) >= limit:
                break
            if seq not in excluded:
                m = view.inbox[seq]
                found.append(InboxMessage(seq, m.target, m.caller, m.payload))
        return found

    async def read_state(self, address: Address) -> dict[str, StateValue]:
        return dict(self.view.state.get(address, {}))

    # --- whole contents ----------------------------------------------------------------------

    def snapshot(self) -> Contents:
        """Every record of the view as of the last commit (a copy), with the messages on their
        way between streams in their mailboxes."""
        return self.view.contents(in_flight(self.layout, self.view))
