"""The storage engine seam: everything the runtime asks of storage, and nothing more.

The runtime's partition processing (dispatcher, commits, timers, connectors) sees storage only
through ``StorageEngine``, so engines are interchangeable: SQLite for a data dir
(``pystatefun.store.sqlite``), memory for tests and ``pystatefun.testing``
(``pystatefun.store.memory``), and a replicated engine for cluster mode. The contract suite in
``tests/contract/test_storage_engines.py`` runs against every engine and states what each must
do; docs/architecture.md describes the seam.

What an engine promises (docs/architecture.md, "The consistency contract"):

- ``commit(step)`` applies a step atomically and returns once it is durable; steps queued close
  together may share one durable write (group commit), and are applied in queue order.
- ``submit(step)`` queues a step whose effects the runtime shows before it is durable; its
  messages get provisional ids (negative) that later steps may consume.
- Reads see every committed step, and for ``read_batch``/``pending_counts`` leave out messages
  that a step not yet durable consumed.
- ``snapshot()`` reads every record as of one commit while steps go on being committed.
- A step with an idempotency key already seen within its window is refused as a duplicate and
  writes nothing; a delayed message reusing a pending token is refused alone, naming why.

Whole contents go in through a ``BulkLoader`` (savepoint restores, bootstrap), into storage that
no runtime has open: everything it was given commits at once, or nothing does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol, final

from pystatefun.reading import Reading
from pystatefun.store.contents import Content, Contents, StateContent
from pystatefun.store.keygroups import KeyGroups
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.store.steps import Step, StepOutcome
from pystatefun.types import Address

if TYPE_CHECKING:  # in annotations only: a data dir can be read without loading asyncio
    import asyncio

__all__ = [
    "UNWRITABLE_RETRY_S",
    "BulkLoader",
    "EngineStatistics",
    "OwnerMovingError",
    "OwnershipListener",
    "StorageEngine",
    "WholeStore",
]

#: The longest wait between two tries of a write the file system refused (a full disk): how
#: soon an ingress tells a refused client to try again (``Retry-After``).
UNWRITABLE_RETRY_S = 2


@final
class EngineStatistics(NamedTuple):
    """Work an engine did: durable writes (``commits``) and the steps they held;
    ``group_sizes`` says how many writes held how many steps (group commit), as
    ``(steps, writes)`` pairs."""

    commits: int
    steps: int
    group_sizes: tuple[tuple[int, int], ...] = ()


class OwnerMovingError(Exception):
    """No runtime took a request asked of an address's owner (``StorageEngine.ask_owner``):
    the address is between owners this instant. Nothing was asked; ask again shortly."""


class OwnershipListener(Protocol):
    """What a runtime does when the addresses it serves change: a cluster worker serves the
    partitions it owns, and those move between workers as workers join and leave."""

    def arrived(self) -> None:
        """Messages or timers of addresses this runtime serves were stored by someone else
        (another worker; or a partition was acquired with what waits in it): look again."""
        ...

    def acquired(self) -> None:
        """This runtime serves more than before (partitions claimed): look at what waits in
        them, and read the ingress sources they hold the positions of."""
        ...

    async def release(self, gone: Callable[[Address], bool]) -> None:
        """Stop working on the addresses ``gone`` selects (their messages stay stored, for
        their next owner); return once no invocation of one of them is running."""
        ...

    def lost(self, reason: str) -> None:
        """The storage can take no more commits from this runtime (another worker took over
        its partitions while it was cut off or paused): it must stop; a restart rejoins."""
        ...


class StorageEngine(Protocol):
    """One open store of state, mailboxes, timers, egress records and dead letters."""

    #: Where the data lives, for messages (a data dir's path, "memory", a cluster's URL).
    where: str

    @property
    def instance_id(self) -> str:
        """A name for this storage, made when it is created and kept for its life (valid once
        open): the same after every restart, different for every other data dir (a restored
        savepoint is another one). Connectors name what must outlive a restart after it, such
        as a Kafka transactional id, which fences a predecessor that is still publishing."""
        ...

    async def open(self, key_groups: int) -> None:
        """Open (creating if new); refuse storage made with another number of key groups."""
        ...

    async def close(self) -> None:
        """Commit what is queued, then release the storage."""
        ...

    #: Whether other runtimes serve parts of this store at the same time (cluster workers):
    #: a connector that reads or writes outside the steps of the addresses it serves (a Kafka
    #: consumer, a transactional producer) must know.
    shared: bool

    #: The most messages one step may consume (a cluster's steps are atomic batches of
    #: bounded size): the runtime sends no function more in one request.
    max_step_messages: int

    @property
    def unwritable(self) -> str | None:
        """Why the store takes no writes now (a full disk, a read-only file system), while
        it holds the steps it was given and tries them again; None when it writes. The
        runtime refuses new ingress messages meanwhile and reports it on ``/ready``."""
        ...

    def owns(self, address: Address) -> bool:
        """Whether this runtime serves ``address`` now (always, but on a cluster worker)."""
        ...

    def owns_position(self, source: str, key: str) -> bool:
        """Whether this runtime may write where ingress ``source`` read up to in its
        partition ``key`` now, and so read that partition (always, but on a cluster worker:
        each source partition's position lives in one cluster partition, whose owner reads
        it)."""
        ...

    def listen(self, listener: OwnershipListener) -> None:
        """Tell ``listener`` whenever what this runtime serves changes (``owns``)."""
        ...

    def answer_asked(self, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        """Answer with ``answer`` what the other runtimes of a shared store ask this one
        (``ask_owner``) about the addresses it serves: a request-reply request, whose reply
        only the serving runtime sees. A store of one runtime is never asked."""
        ...

    async def ask_owner(self, address: Address, request: bytes, *, timeout_s: float) -> bytes:
        """``request`` answered by the runtime that serves ``address`` now (its
        ``answer_asked``). Raises ``OwnerMovingError`` when none took it (no runtime serves the
        address this instant, or its owner is handing it over): nothing was asked, ask again;
        ``TimeoutError`` when the owner took it and gave no answer (none within ``timeout_s``,
        or it failed while answering): it may have run, so asking again could run it twice."""
        ...

    # --- steps -------------------------------------------------------------------------------

    async def commit(self, step: Step) -> StepOutcome:
        """Apply ``step`` atomically; return once it is durable (or refused)."""
        ...

    def submit(self, step: Step) -> tuple[Sequence[int], asyncio.Future[StepOutcome]]:
        """Queue ``step`` and return its messages' provisional ids (``RELAYED`` for one the
        store delivers itself) and its durability future."""
        ...

    @property
    def backlog(self) -> int:
        """Steps queued or being written: not durable yet."""
        ...

    # --- recovery and invocation reads -------------------------------------------------------

    async def pending_counts(self, *, foreign: bool = False) -> dict[Address, int]:
        """Stored messages per address (less those consumed by steps not yet durable);
        ``foreign``: only those no step of this engine wrote since it was opened."""
        ...

    async def read_batch(
        self, target: Address, limit: int, in_memory: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        """The oldest ``limit`` stored messages of ``target`` not in ``in_memory`` (ids).

        ``foreign``: only messages no step committed or submitted to this engine wrote since
        it was opened: those recovered from before, and re-driven ones. The runtime holds the
        messages of its own steps in memory, and delivers each of them there once; reading one
        of those as well, in the instant between its commit and its delivery, would run it
        twice."""
        ...

    async def read_state(self, address: Address) -> dict[str, StateValue]:
        """Every stored state value of ``address`` (expired ones included: readers check)."""
        ...

    async def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        """Delayed messages due at ``now_ms``, soonest first."""
        ...

    async def next_timer_at(self) -> int | None:
        """When the next delayed message is due (None: none pending)."""
        ...

    async def timers_of(self, address: Address) -> list[TimerRecord]:
        """The pending delayed messages to or from ``address``, soonest first (the console's
        address lookup). A cluster worker sees those stored in the partitions it serves: a
        delayed message lives in its sender's partition."""
        ...

    async def positions(self, source: str) -> dict[str, str]:
        """Where ingress ``source`` has read up to, by partition key."""
        ...

    async def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        """Rows per named table (``inbox``, ``timers``, ``egress``, ``dead_letters``, ``state``)."""
        ...

    # --- egress, dead letters, housekeeping --------------------------------------------------

    async def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        """Remove and return the oldest record of ``topic``, durably; None when empty."""
        ...

    def egress_shards(self) -> tuple[int, ...]:
        """The shards of the egress records this runtime publishes now: ``(0,)``, all of
        them, on a store of one runtime; a cluster worker's partitions. One runtime at a time
        publishes a shard, in ``seq`` order, so a publisher names its progress after it."""
        ...

    async def egress_after(
        self, egress: str, after_seq: int, limit: int, *, shard: int | None = None
    ) -> list[EgressRecord]:
        """The records of ``egress`` (every topic) with a ``seq`` above ``after_seq``, oldest
        first, at most ``limit``: what a publishing egress sends next; of ``shard`` only, or
        of every shard this runtime serves (None: oldest first within each shard only).
        Sequence numbers only grow within a shard, and are never reused, even once every
        record is deleted."""
        ...

    async def delete_egress(self, egress: str, up_to_seq: int, *, shard: int | None = None) -> int:
        """Delete the records of ``egress`` up to ``up_to_seq`` (published), of ``shard`` or
        of every shard this runtime serves (None), durably; how many."""
        ...

    async def dead_letters(self, limit: int = -1) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters (-1: all)."""
        ...

    async def redrive(self, ids: Sequence[int] | None) -> int:
        """Move dead letters (None: all) back to their mailboxes; how many messages."""
        ...

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        """Delete dead letters (None: all); how many."""
        ...

    async def purge_expired(self) -> int:
        """Delete expired idempotency keys and state values; how many rows."""
        ...

    # --- whole contents ----------------------------------------------------------------------

    def snapshot(self) -> Contents:
        """Every record as of one commit, while steps go on (for savepoints and queries)."""
        ...

    def statistics(self) -> EngineStatistics: ...

    def readings(self) -> list[Reading]:
        """Its own figures for the metrics, now (the size of its files, the cluster
        partitions it owns)."""
        ...


class BulkLoader(Protocol):
    """Loads records into storage that no runtime has open; a context manager that commits
    everything on success and nothing on an error (``DataDir.loader``,
    ``MemoryEngine.loader``)."""

    #: The key groups of the storage loaded into (rows are placed by them).
    key_groups: KeyGroups

    def states(self, values: list[StateContent]) -> None:
        """Load a batch of state values (written over existing ones)."""
        ...

    def add(self, content: Content) -> None:
        """Load one record of any kind."""
        ...

    def commit(self) -> None:
        """Make everything loaded durable at once."""
        ...

    def close(self) -> None:
        """Release the storage; what was not committed is not loaded."""
        ...

    def __enter__(self) -> BulkLoader: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class WholeStore:
    """The ownership of storage that one runtime has to itself (a data dir, memory): it serves
    every address, and that never changes."""

    shared = False
    max_step_messages = 1 << 30  # a transaction of any size

    @property
    def unwritable(self) -> str | None:
        return None  # a store that can always write, unless the subclass says otherwise

    def owns(self, address: Address) -> bool:
        return True

    def owns_position(self, source: str, key: str) -> bool:
        return True

    def listen(self, listener: OwnershipListener) -> None:
        del listener  # nothing ever moves

    def egress_shards(self) -> tuple[int, ...]:
        return (0,)

    def answer_asked(self, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        del answer  # no other runtime shares this store

    async def ask_owner(self, address: Address, request: bytes, *, timeout_s: float) -> bytes:
        raise AssertionError(f"{address} is served here: a store of one runtime serves all")
