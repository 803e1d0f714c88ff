"""The embedded runtime: the event-driven database that stores state and carries messages.

``Runtime(load_module(path), RuntimeOptions(...))`` runs a module in this process; the
``pystatefun run`` command is a thin shell around it. The consistency contract and the layers are
docs/architecture.md; the internals are described in the module docstrings of ``dispatcher``,
``batches``, ``timers`` and ``pystatefun.store.sqlite``.
"""

from pystatefun.runtime.options import RuntimeOptions as RuntimeOptions
from pystatefun.runtime.service import Runtime as Runtime
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS as DEFAULT_KEY_GROUPS
from pystatefun.store.keygroups import key_group_of as key_group_of

__all__ = ["DEFAULT_KEY_GROUPS", "Runtime", "RuntimeOptions", "key_group_of"]
