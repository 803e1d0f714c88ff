"""Durable storage: state, mailboxes, timers, egress records, idempotency keys, dead letters.

``DataDir`` is the one front door to a data dir (opening, locking, read-only snapshots, bulk
loads, dead letters); ``StorageEngine`` is what the runtime asks of storage, with an SQLite
engine for data dirs (``SqliteEngine``) and one in memory for tests (``MemoryEngine``). Every
step commits atomically (docs/architecture.md).
"""

from pystatefun.store._writer import may_fail_alone as may_fail_alone
from pystatefun.store.contents import Content as Content
from pystatefun.store.contents import Contents as Contents
from pystatefun.store.datadir import DataDir as DataDir
from pystatefun.store.datadir import DataDirInfo as DataDirInfo
from pystatefun.store.datadir import Durability as Durability
from pystatefun.store.engine import EngineStatistics as EngineStatistics
from pystatefun.store.engine import StorageEngine as StorageEngine
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS as DEFAULT_KEY_GROUPS
from pystatefun.store.keygroups import KeyGroups as KeyGroups
from pystatefun.store.keygroups import key_group_of as key_group_of
from pystatefun.store.memory import MemoryEngine as MemoryEngine
from pystatefun.store.records import DeadLetter as DeadLetter
from pystatefun.store.records import EgressRecord as EgressRecord
from pystatefun.store.records import ExpireMode as ExpireMode
from pystatefun.store.records import InboxMessage as InboxMessage
from pystatefun.store.records import Payload as Payload
from pystatefun.store.records import StateValue as StateValue
from pystatefun.store.records import TimerRecord as TimerRecord
from pystatefun.store.sqlite import SqliteEngine as SqliteEngine
from pystatefun.store.steps import CancelTimer as CancelTimer
from pystatefun.store.steps import DeadLetterEntry as DeadLetterEntry
from pystatefun.store.steps import EgressOut as EgressOut
from pystatefun.store.steps import NewMessage as NewMessage
from pystatefun.store.steps import NewTimer as NewTimer
from pystatefun.store.steps import Position as Position
from pystatefun.store.steps import Step as Step
from pystatefun.store.steps import StepOutcome as StepOutcome

__all__ = [
    "DEFAULT_KEY_GROUPS",
    "CancelTimer",
    "Content",
    "Contents",
    "DataDir",
    "DataDirInfo",
    "DeadLetter",
    "DeadLetterEntry",
    "Durability",
    "EgressOut",
    "EgressRecord",
    "EngineStatistics",
    "ExpireMode",
    "InboxMessage",
    "KeyGroups",
    "MemoryEngine",
    "NewMessage",
    "NewTimer",
    "Payload",
    "Position",
    "SqliteEngine",
    "StateValue",
    "Step",
    "StepOutcome",
    "StorageEngine",
    "TimerRecord",
    "key_group_of",
    "may_fail_alone",
]
