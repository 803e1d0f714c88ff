"""Routing the egress records functions send to the egress connectors the module declares.

Each record names an egress id (``io.statefun.playground/egress``, a Kafka egress's id); the
connector with that id checks the record and says where it goes (``Egress.route``) while the
step is made, so a record no egress can take fails its batch before anything commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, final

from pystatefun.errors import TerminalError
from pystatefun.io.api import Egress
from pystatefun.protocol import TypedValue
from pystatefun.store import EgressOut

__all__ = ["EgressRoutes", "EgressRouting"]


class EgressRouting(Protocol):
    """Checks an egress record a function sent and says where it goes."""

    def route(self, egress: str, value: TypedValue, where: str) -> EgressOut:
        """The record for ``egress``; ``TerminalError`` naming ``where`` if it cannot go."""
        ...


@final
class EgressRoutes:
    """The module's egresses by id."""

    def __init__(self, egresses: Iterable[Egress]) -> None:
        self._by_id = {egress.egress_id: egress for egress in egresses}

    def route(self, egress: str, value: TypedValue, where: str) -> EgressOut:
        connector = self._by_id.get(egress)
        if connector is None:
            raise TerminalError(
                f"{where} sent a record to egress {egress!r}, which the module does not declare "
                f"(declared: {', '.join(self._by_id) or 'none'}); declare it in the module YAML"
            )
        return connector.route(value, where)

    def committed(self, records: Iterable[EgressOut]) -> None:
        """A step committed ``records``: tell each egress they are for."""
        for egress in {record.egress for record in records}:
            connector = self._by_id.get(egress)
            if connector is not None:
                connector.committed()
