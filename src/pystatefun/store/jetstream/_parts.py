"""The parts of an open cluster engine, as the groups of its methods see them.

``JetStreamEngine`` is assembled from groups of methods (``_stepping``, ``_housekeeping``);
each works on the engine's view, layout, writers and ownership, which the engine makes when
it opens. This base names them once for all the groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pystatefun.store.jetstream._layout import ClusterLayout
    from pystatefun.store.jetstream._ownership import Ownership
    from pystatefun.store.jetstream._view import ClusterView
    from pystatefun.store.jetstream._writers import Writers

__all__ = ["EngineParts"]


class EngineParts:
    """The open engine's parts (``JetStreamEngine`` has them)."""

    @property
    def view(self) -> ClusterView:
        raise NotImplementedError

    @property
    def layout(self) -> ClusterLayout:
        raise NotImplementedError

    @property
    def writers(self) -> Writers:
        raise NotImplementedError

    @property
    def ownership(self) -> Ownership:
        raise NotImplementedError
