"""Durable storage: state, mailboxes, timers, egress records, idempotency keys, dead letters.

``DataDir`` is the one front door to a data dir (opening, locking, read-only snapshots, bulk
loads, dead letters); ``StorageEngine`` is what the runtime asks of storage, with an SQLite
engine for data dirs (``SqliteEngine``) and one in memory for tests (``MemoryEngine``). Every
step commits atomically (docs/architecture.md).

The two engines are imported on first use (``__getattr__``): they bring asyncio and threads,
which reading a data dir (``pystatefun state``, ``sql``, ``dead-letters``) does not need.
"""

import importlib
from typing import TYPE_CHECKING

from pystatefun.store._writer import may_fail_alone as may_fail_alone
from pystatefun.store.contents import Content as Content
from pystatefun.store.contents import Contents as Contents
from pystatefun.store.datadir import DataDir as DataDir
from pystatefun.store.datadir import DataDirInfo as DataDirInfo
from pystatefun.store.datadir import Durability as Durability
from pystatefun.store.engine import BulkLoader as BulkLoader
from pystatefun.store.engine import EngineStatistics as EngineStatistics
from pystatefun.store.engine import OwnerMovingError as OwnerMovingError
from pystatefun.store.engine import OwnershipListener as OwnershipListener
from pystatefun.store.engine import StorageEngine as StorageEngine
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS as DEFAULT_KEY_GROUPS
from pystatefun.store.keygroups import KeyGroups as KeyGroups
from pystatefun.store.keygroups import key_group_of as key_group_of
from pystatefun.store.records import DeadLetter as DeadLetter
from pystatefun.store.records import EgressRecord as EgressRecord
from pystatefun.store.records import ExpireMode as ExpireMode
from pystatefun.store.records import InboxMessage as InboxMessage
from pystatefun.store.records import Payload as Payload
from pystatefun.store.records import StateValue as StateValue
from pystatefun.store.records import TimerRecord as TimerRecord
from pystatefun.store.steps import RELAYED as RELAYED
from pystatefun.store.steps import CancelTimer as CancelTimer
from pystatefun.store.steps import DeadLetterEntry as DeadLetterEntry
from pystatefun.store.steps import EgressOut as EgressOut
from pystatefun.store.steps import NewMessage as NewMessage
from pystatefun.store.steps import NewTimer as NewTimer
from pystatefun.store.steps import Position as Position
from pystatefun.store.steps import Step as Step
from pystatefun.store.steps import StepOutcome as StepOutcome

if TYPE_CHECKING:  # imported by __getattr__ on first use
    from pystatefun.store.memory import MemoryEngine as MemoryEngine
    from pystatefun.store.sqlite import SqliteEngine as SqliteEngine

_LAZY = {"MemoryEngine": "pystatefun.store.memory", "SqliteEngine": "pystatefun.store.sqlite"}

__all__ = [
    "DEFAULT_KEY_GROUPS",
    "RELAYED",
    "BulkLoader",
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
    "OwnerMovingError",
    "OwnershipListener",
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


def __getattr__(name: str) -> object:
    """The engines, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The engines too, imported or not, so that ``dir()`` and completion show them."""
    return sorted({*globals(), *_LAZY})
