"""Durable storage: state, mailboxes, timers, egress records, idempotency keys, dead letters.

Every step commits atomically (DESIGN §2, §3). The embedded engine is SQLite
(``pystatefun.store.sqlite``); a data dir is one SQLite file, readable with plain SQL.
"""

from pystatefun.store._writer import may_fail_alone as may_fail_alone
from pystatefun.store.records import DeadLetter as DeadLetter
from pystatefun.store.records import EgressRecord as EgressRecord
from pystatefun.store.records import ExpireMode as ExpireMode
from pystatefun.store.records import InboxMessage as InboxMessage
from pystatefun.store.records import Payload as Payload
from pystatefun.store.records import StateValue as StateValue
from pystatefun.store.records import TimerRecord as TimerRecord
from pystatefun.store.sqlite import Durability as Durability
from pystatefun.store.sqlite import SqliteStore as SqliteStore
from pystatefun.store.steps import CancelTimer as CancelTimer
from pystatefun.store.steps import NewMessage as NewMessage
from pystatefun.store.steps import NewTimer as NewTimer
from pystatefun.store.steps import Step as Step
from pystatefun.store.steps import StepOutcome as StepOutcome

__all__ = [
    "CancelTimer",
    "DeadLetter",
    "Durability",
    "EgressRecord",
    "ExpireMode",
    "InboxMessage",
    "NewMessage",
    "NewTimer",
    "Payload",
    "SqliteStore",
    "StateValue",
    "Step",
    "StepOutcome",
    "TimerRecord",
    "may_fail_alone",
]
