"""The cluster storage engine: partitions of a NATS JetStream stream, one atomic batch per commit.

Each worker reads the whole stream into its view and keeps reading it as it grows (``_tail``),
and serves the partitions it owns (``_ownership``: dealt over the live workers). It claims a
partition by writing the partition's progress marker, fenced on the marker's last sequence;
from then on every batch it publishes carries the markers of the partitions its steps belong
to, fenced the same way. A worker whose partition another one claimed since cannot commit:
the server refuses the whole batch. One batch is in flight at a time; steps queued meanwhile go
into the next one (group commit), up to the batch limit of the server. Messages to addresses
of other workers' partitions are appended to their mailboxes in the same batch; their owner
reads them from the stream.

A publish that gets no acknowledgement may have committed: the engine reads the first
partition's marker, which names the last batch stored, and publishes again only when that is
not this one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, final

from nats.js.errors import APIError

from pystatefun.errors import ClusterStorageError
from pystatefun.store.contents import Contents
from pystatefun.store.engine import EngineStatistics, OwnershipListener
from pystatefun.store.jetstream._batch import Batch, home_of
from pystatefun.store.jetstream._blocking import connect
from pystatefun.store.jetstream._commits import Committer, Job
from pystatefun.store.jetstream._connection import UNREACHABLE, BatchRefusedError
from pystatefun.store.jetstream._directory import read_directory, write_directory
from pystatefun.store.jetstream._forwarding import Forwarding, forwardable
from pystatefun.store.jetstream._housekeeping import Housekeeping
from pystatefun.store.jetstream._layout import ClusterLayout, check_cluster_name
from pystatefun.store.jetstream._membership import Membership
from pystatefun.store.jetstream._ownership import Ownership
from pystatefun.store.jetstream._tail import Tail
from pystatefun.store.jetstream._view import ClusterView
from pystatefun.store.records import InboxMessage, StateValue
from pystatefun.store.steps import Step, StepOutcome
from pystatefun.types import Address

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["DEFAULT_PARTITIONS", "JetStreamEngine"]

_log = logging.getLogger("pystatefun.store")
_MOVED = "the partition holding this ingress position moved to another worker"

_Finish = Callable[[int], StepOutcome]

DEFAULT_PARTITIONS = 16


@final
class JetStreamEngine(Housekeeping):
    """A ``StorageEngine`` on a NATS JetStream cluster (``servers``), named ``cluster``."""

    shared = True  # every worker of the cluster serves its share of it

    def __init__(
        self,
        servers: Sequence[str],
        *,
        cluster: str,
        worker: str,
        clock_ms: Callable[[], int],
        partitions: int = DEFAULT_PARTITIONS,
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
        self._replicas = replicas
        self._batch_limit = batch_limit
        self._publish_timeout = publish_timeout
        self._commit_deadline = commit_deadline
        self._heartbeat_s, self._lease_s = heartbeat_s, lease_s
        self._instance = uuid.uuid4().hex[:10]  # this process's batches start with it
        self._nc: Client | None = None
        self._layout: ClusterLayout | None = None
        self._view: ClusterView | None = None
        self._committer: Committer | None = None
        self._ownership: Ownership | None = None
        self._forwarding: Forwarding | None = None
        self._membership: Membership | None = None
        self._tail: Tail | None = None
        self._instance_id: str | None = None
        self._next_id = -1
        self._provisional: dict[int, str] = {}  # provisional id -> subject, until consumed
        self._stored: dict[int, int] = {}  # provisional id -> seq, once committed
        self._own: set[int] = set()
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
        directory = await read_directory(js, self.cluster, replicas=self._replicas)
        if directory is None:
            directory = await write_directory(js, self.cluster, key_groups=key_groups,
                                              partitions=self._partitions, generation=1,
                                              after=None)  # fmt: skip
        if directory.key_groups != key_groups:
            raise ClusterStorageError(
                f"cluster {self.cluster!r} was made with {directory.key_groups} key groups, "
                f"not {key_groups}: start the worker with the cluster's number"
            )
        self._instance_id = directory.instance_id
        layout = self._layout = directory.layout(self.cluster)
        view = self._view = ClusterView(key_groups)
        self._committer = committer = Committer(
            self._nc, layout, view, worker=self.worker, instance=self._instance,
            clock_ms=self._clock_ms, provisional=self._provisional,
            batch_limit=self._batch_limit, publish_timeout=self._publish_timeout,
            commit_deadline=self._commit_deadline,
        )  # fmt: skip
        await committer.start(js, replicas=self._replicas)
        self._own.clear()
        self._membership = membership = Membership(
            self._nc, cluster=self.cluster, worker=self.worker, instance=self._instance,
            on_change=lambda: self.ownership.wake(),  # noqa: PLW0108 - not made yet
            report=self._report,
            heartbeat_s=self._heartbeat_s,
            lease_s=self._lease_s,
        )  # fmt: skip
        self._ownership = ownership = Ownership(layout, committer, membership, forget=self._forget)
        self._tail = Tail(js, layout, view, own_prefix=self._instance,
                          on_arrival=ownership.arrival, on_marker=ownership.marker_seen,
                          idle=lambda: not committer.busy)  # fmt: skip
        await self._tail.start()
        await ownership.start()
        self._forwarding = Forwarding(self._nc, layout, ownership, commit=self.commit,
                                      commit_here=self._commit_forwarded)  # fmt: skip
        await self._forwarding.start()

    def _report(self) -> dict[str, object]:
        serving = [] if self._ownership is None else sorted(self._ownership.serving)
        return {"serving": serving, "position": 0 if self._tail is None else self._tail.position}

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
        if self._committer is not None:
            await self._committer.stop()
            self._closed_statistics = self._committer.statistics()
            self._committer = None
        if self._membership is not None:
            await self._membership.stop()  # after the last commit: the others claim at once
            self._membership = None
        if self._tail is not None:
            await self._tail.stop()
            self._tail = None
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    def owns(self, address: Address) -> bool:
        return self.layout.partition_of(address.id) in self.ownership.serving

    def owns_position(self, source: str, key: str) -> bool:
        return self.layout.partition_of_key(source, key) in self.ownership.serving

    def listen(self, listener: OwnershipListener) -> None:
        self.ownership.listener = listener

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
    def committer(self) -> Committer:
        assert self._committer is not None, "the store is not open"
        return self._committer

    def statistics(self) -> EngineStatistics:
        committer = self._committer
        return self._closed_statistics if committer is None else committer.statistics()

    # --- steps -------------------------------------------------------------------------------

    async def commit(self, step: Step) -> StepOutcome:
        return await self._queue(step)

    def submit(self, step: Step) -> tuple[range, asyncio.Future[StepOutcome]]:
        """Queue ``step``; its messages get provisional ids (negative) until it commits."""
        count = len(step.messages)
        ids = range(self._next_id, self._next_id - count, -1)
        self._next_id -= count
        step.provisional = ids
        return ids, self._queue(step)

    async def _commit_forwarded(self, step: Step) -> StepOutcome:
        """A step another worker sent here (``_forwarding``): committed like this worker's
        own, but its messages are not in this runtime's memory; it reads them as another
        worker's."""
        job = Job(partial(self._build_step, step=step, in_memory=False), step)
        outcome: StepOutcome = await self.committer.queue(job)
        ownership, layout = self.ownership, self.layout
        for message in step.messages:
            ownership.arrival(layout.partition_of(message.target.id))
        return outcome

    def _queue(self, step: Step) -> asyncio.Future[StepOutcome]:
        home = home_of(step, self.layout, self.view, self._provisional)
        if home not in self.committer.markers and forwardable(step):
            return asyncio.ensure_future(self.forwarding.forward(step, home))
        # A step homed in another worker's partition with an idempotency key and more than
        # messages is fenced on the key's subject: alone, so that a refusal is its own.
        if home not in self.committer.markers and step.positions:
            # Only a position's partition owner writes it (it alone reads that source
            # partition): a step after the partition moved away is refused, nothing written.
            refused: asyncio.Future[StepOutcome] = asyncio.get_running_loop().create_future()
            refused.set_result(StepOutcome(committed=False, error=_MOVED))
            return refused
        solo = home not in self.committer.markers and step.dedup_key is not None
        job = Job(partial(self._build_step, step=step), step, solo=solo)
        future: asyncio.Future[StepOutcome] = self.committer.queue(job)
        return future if not solo else asyncio.ensure_future(self._answer(future))

    async def _answer(self, refused: asyncio.Future[StepOutcome]) -> StepOutcome:
        try:
            return await refused
        except BatchRefusedError:  # its key or position was written since the view saw it
            reason = "an idempotency key or ingress position changed meanwhile; retry"
            return StepOutcome(committed=False, error=reason)

    def _build_step(
        self, batch: Batch, *, step: Step, in_memory: bool = True
    ) -> Callable[[int], StepOutcome] | StepOutcome:
        refused = batch.refusal(step)
        if refused is not None:
            return refused
        home = batch.home(step)
        if home not in self.committer.markers and (
            step.state_address is not None or step.consumed or step.fired_timers
        ):
            raise ClusterStorageError(
                f"cluster {self.cluster!r}: a step of partition {home}, which this worker "
                "released, came after the release; this worker commits nothing more. Restart "
                "it to rejoin the cluster."
            )
        records, message_records, letter_record = batch.records_of(step, home)
        batch.add(records, home)
        provisional = step.provisional

        def finish(first: int) -> StepOutcome:
            found = [batch.seq_of(record, first) for record in message_records]
            seqs = tuple(seq for seq in found if seq is not None)
            if in_memory:  # the runtime delivers them to memory
                self._own.update(self._served_seqs(seqs))
            if provisional is not None:
                self._stored.update(
                    (n, seq) for n, seq in zip(provisional, found, strict=True) if seq is not None
                )
                seqs = ()  # the runtime holds them by their provisional ids
            for message_id in step.consumed:
                self._provisional.pop(message_id, None)
                self._own.discard(self._stored.pop(message_id, message_id))
            letter = None if letter_record is None else batch.seq_of(letter_record, first)
            return StepOutcome(committed=True, seqs=seqs, dead_letter_id=letter)

        return finish

    def _served_seqs(self, seqs: Iterable[int]) -> Iterator[int]:
        """The messages whose mailboxes this worker serves: the runtime holds those in memory;
        the others are for whichever worker serves them (this one too, once it claims them)."""
        layout, subject_of = self.layout, self.view.subject_of
        serving = self.ownership.serving
        return (seq for seq in seqs
                if seq in subject_of and layout.parse(subject_of[seq])[1] in serving)  # fmt: skip

    @property
    def backlog(self) -> int:
        committer = self._committer
        return 0 if committer is None else committer.backlog

    # --- reads -------------------------------------------------------------------------------

    def _excluded(self, in_memory: Iterable[int], foreign: bool) -> set[int]:
        excluded = {self._stored.get(i, i) for i in in_memory}
        excluded.update(self._stored.get(i, i) for i in self.committer.undurable_consumed())
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
        """Every record of the view as of the last commit (a copy)."""
        return self.view.contents()
