"""Your state is a database: read-only SQL over a consistent snapshot of a data dir.

``StateSnapshot`` opens a data dir read-only beside a running runtime (SQLite's WAL lets readers
and the writer work at once: neither waits for the other) and gives every function type and
state name a view of its live values, decoded: primitive typed values become SQL values, JSON
typed values become JSON text for SQLite's JSON functions. ``pystatefun sql`` and ``pystatefun
state`` are built on it.
"""

from pystatefun.query.snapshot import StateSnapshot as StateSnapshot
from pystatefun.query.snapshot import StateView as StateView
from pystatefun.query.values import sql_value as sql_value

__all__ = ["StateSnapshot", "StateView", "sql_value"]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("pystatefun.query."):
        _obj.__module__ = __name__
del _name, _obj
