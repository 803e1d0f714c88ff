"""What every system under test provides to the scenarios: processes to measure, and requests.

A *peer* is one system serving the same counter logic (pystatefun with our SDK, pystatefun with
the official StateFun SDK, Restate). Scenarios only speak HTTP/1.1 to ``ingress`` with the
requests a peer builds, so the load generator is the same for every peer.

The logic every peer serves (same names, same behaviour):

- ``counter/<key>`` add(n): read state ``count`` (0 if absent), add n, write it, answer the new
  count; get(): answer the count. Requests to one key are served in arrival order.
- ``chain-a/<key>`` → ``chain-b/<key>`` → ``chain-c/<key>``: each hop adds 1 to its own durable
  ``count`` state; the request is answered (with C's count) only once C has written its state.
- ``ticker/<key>`` schedule(): sends itself a message delayed by 1 s carrying the due time
  (unix ms); on its arrival the lateness (now - due, ms) is appended to state ``lateness``;
  lateness(): answers that list as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Peer", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP/1.1 request to a peer's ingress."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Peer(Protocol):
    """A running system under test. ``start`` blocks until the ingress serves."""

    name: str
    ingress: str  # "http://127.0.0.1:PORT"

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop every process this peer started (by PID) and remove its scratch data."""

    def processes(self) -> dict[str, int]:
        """Role -> PID of every process to measure, e.g. {"server": 123, "service": 456}."""

    def kill_server(self) -> None:
        """kill -9 the server (the database), leaving function/service processes running."""

    def restart_server(self) -> None:
        """Start the server again on the same data; returns at once (do not wait for ready)."""

    def preload(self, entities: int) -> bool:
        """Put ``entities`` counters (keys "0".."entities-1", count 1) into state without the
        ingress, while the server is stopped; False if this peer has no such path (the scenario
        then sends one-way adds instead)."""

    def add(self, key: str, amount: int, *, wait: bool) -> Request:
        """counter add; wait=False is one-way (answered once durably accepted)."""

    def get(self, key: str) -> Request: ...

    def chain(self, key: str) -> Request: ...

    def schedule_tick(self, key: str) -> Request: ...

    def lateness(self, key: str) -> Request: ...

    def parse_int(self, body: bytes) -> int:
        """The integer in an answer to add/get/chain."""

    def parse_lateness(self, body: bytes) -> list[float]: ...
