"""Test stateful functions in pytest: ``FunctionHarness`` runs them on the runtime's own
scheduler, in memory, with a fake clock (``docs/sdk.md``, "Testing functions")."""

from pystatefun.testing._harness import FunctionHarness as FunctionHarness
from pystatefun.testing._records import OutboxMessage as OutboxMessage
from pystatefun.testing._records import RecordedEgress as RecordedEgress
from pystatefun.testing._records import decode_payload as decode_payload

__all__ = ["FunctionHarness", "OutboxMessage", "RecordedEgress", "decode_payload"]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("pystatefun.testing._"):
        _obj.__module__ = __name__
del _name, _obj
