"""The smoke interpreter spread over three function types, one per deployment kind.

An interpreter id belongs to ``smoke/remote``, ``smoke/colocated`` or ``smoke/embedded`` by
``int(id) % 3``, so a command tree hops between the kinds at every ``send``. Each object below
binds one of the three types (and the echo function only in the remote one); the mixed-kinds
test serves ``remote`` with ``pystatefun serve``, runs ``colocated`` as a co-located endpoint
and ``embedded`` in the runtime.
"""

from smoke_functions import ECHO, build

import pystatefun.sdk as sf

KINDS = ("remote", "colocated", "embedded")


def typename_of(target_id):
    """The interpreter type that serves ``target_id``."""
    return f"smoke/{KINDS[int(target_id) % len(KINDS)]}"


def _interpreter_only(kind):
    functions = build(sf, typename=f"smoke/{kind}", typename_of=typename_of)
    if kind == "remote":
        return functions
    only = sf.StatefulFunctions()
    bound = functions.for_typename(f"smoke/{kind}")
    only.register(f"smoke/{kind}", bound.fun, bound.specs)
    return only


remote = _interpreter_only("remote")
colocated = _interpreter_only("colocated")
embedded = _interpreter_only("embedded")
assert ECHO in remote.typenames
