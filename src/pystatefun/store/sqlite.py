"""The embedded storage engine: one SQLite file per data dir, WAL mode, group commit.

One thread owns the connection and runs every read and write, so the engine needs no locks
and reads always see every committed step. Steps queued while a transaction runs are applied
together in the next one: one durable write for many steps (group commit).

Durability: ``fsync`` runs SQLite with ``synchronous=FULL`` (a commit survives power loss);
``os`` with ``synchronous=NORMAL`` (a commit survives a crash of the process, which is all a
``kill -9`` can do). The data dir itself (opening, locking, metadata) is ``DataDir``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, final

from pystatefun.errors import DataDirError, WriteOutcomeUnknownError
from pystatefun.reading import Reading
from pystatefun.store._failures import fsync_failed, translated, write_refusal
from pystatefun.store._tables import COUNTED_TABLES, INSTANCE_ID, Tables
from pystatefun.store.contents import Contents
from pystatefun.store.datadir import DataDir, DataDirLock, Durability
from pystatefun.store.engine import UNWRITABLE_RETRY_S, EngineStatistics, WholeStore
from pystatefun.store.keygroups import KeyGroups
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.store.steps import Step, StepOutcome
from pystatefun.types import Address

__all__ = ["SqliteEngine"]

_T = TypeVar("_T")
_RETRY_FIRST_S = 0.05
_log = logging.getLogger("pystatefun.store")


@final
class SqliteEngine(WholeStore):
    """A ``StorageEngine`` on a data dir, opened by one runtime at a time (its lock)."""

    def __init__(
        self,
        data_dir: DataDir,
        *,
        durability: Durability,
        clock_ms: Callable[[], int],
        commit_batch_max: int = 512,
        cache_mib: int = 64,
    ) -> None:
        self.data_dir = data_dir
        self.where = f"data dir {data_dir}"
        self._durability = durability
        self._clock_ms = clock_ms
        self._commit_batch_max = commit_batch_max
        self._cache_mib = cache_mib
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pystatefun-store")
        self._tables: Tables | None = None
        self._lock: DataDirLock | None = None
        self._waiting: list[tuple[Step, asyncio.Future[StepOutcome]]] = []
        self._applying: list[Step] = []  # the steps of the transaction being written
        self._next_id = -1  # provisional message ids count down from -1
        self._failed: str | None = None
        self._unwritable: str | None = None  # why the data dir takes no writes now
        self._unwritable_since = 0.0
        self._write_failures = 0  # transactions the file system refused, since the start
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()  # ends the wait between two tries of a refused write
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._committer: asyncio.Task[None] | None = None
        self._instance_id: str | None = None
        self._commits = 0  # transactions, for statistics
        self._steps_committed = 0
        self._group_sizes: Counter[int] = Counter()

    async def open(self, key_groups: int) -> None:
        """Lock the data dir, open the database, check it was made with the same key groups."""
        self._loop = asyncio.get_running_loop()
        self._lock = self.data_dir.lock()
        try:
            self._tables = await self._run(
                self.data_dir.open_tables,
                key_groups=KeyGroups(key_groups),
                durability=self._durability,
                cache_mib=self._cache_mib,
            )
        except BaseException:
            self._lock.release()
            self._lock = None
            raise
        self._instance_id = await self._run(self.tables.meta, INSTANCE_ID)
        self._committer = asyncio.create_task(self._commit_loop(), name="pystatefun-committer")

    async def close(self) -> None:
        """Commit what is queued, then close the database and release the lock."""
        if self._committer is not None:
            self._closing = True
            self._wake.set()
            self._closed.set()
            await self._committer
            self._committer = None
        if self._tables is not None:
            tables, self._tables = self._tables, None
            await self._run(tables.close)
        self._executor.shutdown(wait=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def readings(self) -> list[Reading]:
        """The data dir's size on disk (the database file and its write-ahead log)."""
        size = 0
        with contextlib.suppress(OSError):  # no data dir yet, or a file going away meanwhile
            for path in self.data_dir.path.iterdir():
                with contextlib.suppress(OSError):
                    size += path.stat().st_size if path.is_file() else 0
        return [
            Reading("store_size_bytes", "The size of the data dir's files on disk.", "gauge", size),
            Reading("store_unwritable", "1 while the data dir takes no writes (disk full, "
                    "read-only): ingresses refuse new messages.", "gauge",
                    int(self._unwritable is not None)),
            Reading("store_write_refusals_total", "Write transactions the file system refused "
                    "(each is tried again until it is written).", "counter",
                    self._write_failures),
        ]  # fmt: skip

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            self._commits, self._steps_committed, tuple(sorted(self._group_sizes.items()))
        )

    async def _run(self, fn: Callable[..., _T], *args: object, **kwargs: object) -> _T:
        """Run ``fn`` on the store's thread; SQLite errors about the file become coded ones."""
        loop = self._loop or asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._translated, fn, args, kwargs)

    async def _write(self, fn: Callable[..., _T], *args: object) -> _T:
        """A small write transaction of its own (a pop, a delete, a re-drive); one the file
        system refuses (a full disk) is a ``DataDirError`` that says so, and wrote nothing."""
        try:
            return await self._run(fn, *args)
        except Exception as exc:
            refusal = write_refusal(exc)
            if refusal is None:
                raise
            raise DataDirError(
                f"the data dir {self.data_dir} cannot be written: {refusal}; nothing was "
                "changed: try again once there is room"
            ) from exc

    def _translated(
        self, fn: Callable[..., _T], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> _T:
        with translated(self.data_dir.database):
            return fn(*args, **kwargs)

    @property
    def tables(self) -> Tables:
        assert self._tables is not None, "the store is not open"
        return self._tables

    # --- group commit ---------------------------------------------------------------------

    async def commit(self, step: Step) -> StepOutcome:
        """Queue ``step`` for the next transaction and wait until it is durable (or refused)."""
        return await self._queue(step)

    def submit(self, step: Step) -> tuple[range, asyncio.Future[StepOutcome]]:
        """Queue ``step`` and return at once, for a step whose effects the runtime makes
        visible before it commits (speculatively).

        Its messages get provisional ids now (negative numbers), which stand for them in
        mailboxes and in the ``consumed`` of later steps until they are stored; the future
        resolves when the step is durable. Only for steps that cannot be refused alone
        (``may_fail_alone``): a step queued later commits in the same or a later transaction,
        so nothing can see a message whose step is then rolled back.
        """
        count = len(step.messages)
        ids = range(self._next_id, self._next_id - count, -1)
        self._next_id -= count
        step.provisional = ids
        return ids, self._queue(step)

    def _queue(self, step: Step) -> asyncio.Future[StepOutcome]:
        assert self._loop is not None, "the store is not open"
        if self._failed is not None:
            raise DataDirError(self._failed)
        future: asyncio.Future[StepOutcome] = self._loop.create_future()
        self._waiting.append((step, future))
        self._wake.set()
        return future

    @property
    def backlog(self) -> int:
        """Steps queued or being written: not durable yet."""
        return len(self._waiting) + len(self._applying)

    def _undurable_consumed(self) -> set[int]:
        """Message ids consumed by steps that are not durable yet: their rows may still be in
        the inbox, and must not be read as waiting."""
        ids: set[int] = set()
        for step in self._applying:
            ids.update(step.consumed)
        for step, _ in self._waiting:
            ids.update(step.consumed)
        return ids

    async def _commit_loop(self) -> None:
        """Every step queued while a transaction runs goes into the next one (group commit)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._waiting[: self._commit_batch_max]
                del self._waiting[: self._commit_batch_max]
                await self._commit_batch(batch)
            if self._closing:
                return

    async def _commit_batch(self, batch: list[tuple[Step, asyncio.Future[StepOutcome]]]) -> None:
        steps = self._applying = [step for step, _ in batch]
        delay = _RETRY_FIRST_S
        while True:
            try:
                outcomes = await self._run(self.tables.apply_steps, steps, self._clock_ms())
                break
            except Exception as exc:  # noqa: BLE001 - every waiting step learns what became of it
                refusal = write_refusal(exc)
                if refusal is None or self._closing:
                    self._give_up(batch, exc)
                    return
                self._refused(refusal, len(steps))
            # The very same transaction is tried again: everything queued behind it waits
            # (a later step may consume a message of this one), and nothing is lost.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            delay = min(delay * 2, UNWRITABLE_RETRY_S)
        if self._unwritable is not None:
            _log.warning("%s takes writes again after %.1fs; the %d step(s) held meanwhile are "
                         "written", self.data_dir, time.monotonic() - self._unwritable_since,
                         len(steps) + len(self._waiting))  # fmt: skip
            self._unwritable = None
        self._applying = []
        self._commits += 1
        self._steps_committed += len(steps)
        self._group_sizes[len(steps)] += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _refused(self, refusal: str, steps: int) -> None:
        """The file system refused a transaction: the store is unwritable until it takes one."""
        self._write_failures += 1
        if self._unwritable is not None:
            return
        self._unwritable_since = time.monotonic()
        self._unwritable = f"the data dir {self.data_dir} cannot be written: {refusal}"
        _log.error("%s. The store holds the %d step(s) of that write and tries it again every "
                   "%gs at most, losing nothing; ingresses refuse new messages meanwhile. Free "
                   "space (or make it writable) and it goes on by itself.", self._unwritable,
                   steps, UNWRITABLE_RETRY_S)  # fmt: skip

    def _give_up(
        self, batch: list[tuple[Step, asyncio.Future[StepOutcome]]], exc: Exception
    ) -> None:
        """A write failed in a way a retry cannot cure (or the store closes meanwhile)."""
        # Steps queued after these may depend on them (speculative delivery), so nothing
        # more is written: the data dir stays at its last commit, which a restart recovers.
        unknown = fsync_failed(exc)
        self._failed = (
            f"writing to {self.data_dir} failed ({exc}); the store "
            "takes no more steps. Fix the cause (disk full? permissions?) and restart: "
            "the runtime recovers from the last commit, losing nothing acknowledged."
        ) if not unknown else (
            f"an fsync of {self.data_dir} failed ({exc}): whether the last write is on disk is "
            "unknown, so it is not acknowledged and the store takes no more steps. Check the "
            "disk (the kernel log says more), then restart: the runtime reads what the disk "
            "holds, losing nothing that was acknowledged."
        )  # fmt: skip
        if unknown:
            self.data_dir.forget_cached_pages()
        said = "whether it is on disk is unknown" if unknown else "none of them was written"
        _log.error("a commit of %d steps failed; %s", len(batch), said, exc_info=exc)
        waiting = [(future, DataDirError) for _, future in self._waiting]  # never written
        written = WriteOutcomeUnknownError if unknown else DataDirError
        self._waiting.clear()
        self._applying = []
        for future, error in [*((f, written) for _, f in batch), *waiting]:
            if not future.done():
                future.set_exception(error(self._failed))

    @property
    def unwritable(self) -> str | None:
        """Why the data dir takes no writes now (None: it does); the runtime refuses new
        ingress messages meanwhile, and says so on ``/ready``."""
        return self._unwritable

    # --- reads and small transactions ---------------------------------------------------------

    async def read_batch(
        self, target: Address, limit: int, in_memory: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        """The oldest ``limit`` stored messages of ``target`` that are neither in memory
        (``in_memory``: their ids) nor consumed by a step that is not durable yet."""
        exclude = self._undurable_consumed()
        exclude.update(in_memory)
        return await self._run(self.tables.read_batch, target, limit, exclude, foreign=foreign)

    async def read_state(self, address: Address) -> dict[str, StateValue]:
        return await self._run(self.tables.read_state, address)

    async def pending_counts(self, *, foreign: bool = False) -> dict[Address, int]:
        """Stored messages per address, less those consumed by steps not durable yet."""
        consumed = self._undurable_consumed()
        return await self._run(self.tables.pending_counts, consumed, foreign=foreign)

    async def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        return await self._run(self.tables.due_timers, now_ms, limit)

    async def next_timer_at(self) -> int | None:
        return await self._run(self.tables.next_timer_at)

    async def timers_of(self, address: Address) -> list[TimerRecord]:
        return await self._run(self.tables.timers_of, address)

    async def counts(self, tables: tuple[str, ...] = COUNTED_TABLES) -> dict[str, int]:
        """Rows per table (by default every table; counting ``state`` reads all of it)."""
        return await self._run(self.tables.counts, tables)

    async def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        return await self._write(self.tables.pop_egress, egress, topic)

    async def egress_after(
        self, egress: str, after_seq: int, limit: int, *, shard: int | None = None
    ) -> list[EgressRecord]:
        return await self._run(self.tables.egress_after, egress, after_seq, limit)

    async def delete_egress(self, egress: str, up_to_seq: int, *, shard: int | None = None) -> int:
        return await self._write(self.tables.delete_egress, egress, up_to_seq)

    @property
    def instance_id(self) -> str:
        assert self._instance_id is not None, "the store is not open"
        return self._instance_id

    async def positions(self, source: str) -> dict[str, str]:
        return await self._run(self.tables.positions, source)

    async def dead_letters(self, limit: int = -1) -> list[DeadLetter]:
        return await self._run(self.tables.dead_letters, limit)

    async def redrive(self, ids: Sequence[int] | None) -> int:
        """Move dead letters (None: all) back to the end of their mailboxes; the runtime's
        rescan picks them up (they are stored rows, not in memory)."""
        return await self._write(self.tables.redrive, ids, self._clock_ms())

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        return await self._write(self.tables.delete_dead_letters, ids)

    async def purge_expired(self) -> int:
        """Delete expired idempotency keys and state values; returns how many rows."""
        return await self._write(self.tables.purge_expired, self._clock_ms())

    def snapshot(self) -> Contents:
        """Every record as of the last commit, read on a connection of its own: the engine
        goes on committing meanwhile."""
        return self.data_dir.contents()
