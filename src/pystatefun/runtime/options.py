"""``RuntimeOptions``: every limit and policy of the embedded runtime, with its default.

Every bound is explicit, so that nothing grows without a limit someone chose: workers, batch
sizes, retries, time windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, final

from pystatefun.errors import ConfigurationError
from pystatefun.http import HttpLimits
from pystatefun.store.datadir import Durability
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS

if TYPE_CHECKING:  # OpenTelemetry is imported only when traces are asked for
    from pystatefun.tracing import Tracer

__all__ = ["RuntimeOptions", "wall_clock_ms"]


def wall_clock_ms() -> int:
    """Milliseconds since the epoch. Timers and TTLs outlive the process, so they use the wall
    clock; a monotonic clock restarts with every boot."""
    return time.time_ns() // 1_000_000


@final
@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How the embedded runtime runs. Since v0.1 unless noted."""

    data_dir: Path = Path("pystatefun-data")
    #: "fsync": a commit survives power loss; "os": it survives a crash of the process.
    durability: Durability = "fsync"
    #: Fixed when the data dir is created (see ``pystatefun.store.keygroups``).
    key_groups: int = DEFAULT_KEY_GROUPS
    #: SQLite page cache: the bounded memory for state; state itself may exceed RAM.
    cache_mib: int = 64
    #: Addresses whose state is kept in memory (least recently invoked evicted first); 0 reads
    #: every invocation's state from disk. Since v0.2.
    state_cache_addresses: int = 10_000
    #: Invocations in flight at once, across all addresses (one per address at most): the
    #: ceiling of the adaptive limit (``pystatefun.runtime.concurrency``).
    max_inflight: int = 256
    #: The floor of the adaptive limit: it starts here, grows while the function servers keep
    #: up and shrinks back when calls queue at them, so that mailboxes fill into batches.
    #: Since v0.2.
    min_inflight: int = 24
    #: Failed calls (each one a whole ``call`` timeout budget) before a batch is dead-lettered.
    dead_letter_after_attempts: int = 5
    retry_backoff_initial_s: float = 1.0
    retry_backoff_max_s: float = 60.0
    #: Tries of a batch whose function raised before it is split to find the message it
    #: cannot take (``pystatefun.runtime.isolation``). Since v0.3.
    function_error_attempts: int = 3
    #: The pause before the second try of such a batch, doubling for each next one. Since v0.3.
    function_error_backoff_s: float = 0.2
    #: How long an ingress ``Idempotency-Key`` is remembered.
    dedup_window_s: float = 24 * 3600.0
    #: How long a request-reply ingress request waits for the answer before 504.
    reply_timeout_s: float = 30.0
    #: Largest ingress message body accepted.
    ingress_max_bytes: int = 32 * 1024 * 1024
    #: Address the playground ingress and egress listen on.
    host: str = "127.0.0.1"
    #: Added to every port the module's ingresses and egresses listen on (cluster workers of
    #: one module on one host).
    port_offset: int = 0
    #: What one client of the playground ingress or egress may send, and how slowly: head size,
    #: header count, head and body timeouts, open connections (``pystatefun.http.HttpLimits``).
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    #: The bearer token the playground ingress and egress require (None: none). Since v0.2.
    ingress_token: str | None = field(default=None, repr=False)  # never in a log line
    #: A PEM certificate chain and its key: the playground ingress and egress (and the admin
    #: port) speak TLS. Since v0.2.
    tls: tuple[Path, Path] | None = None
    #: On SIGTERM, how long running invocations may take to finish before they are abandoned.
    shutdown_grace_s: float = 30.0
    #: How often to look for messages written to the data dir from outside (a re-drive).
    rescan_interval_s: float = 5.0
    clock_ms: Callable[[], int] = field(default=wall_clock_ms, repr=False)
    #: OpenTelemetry spans along each message's path (``pystatefun.tracing``; None: no
    #: tracing, which costs nothing). ``pystatefun run`` sets it from the ``OTEL_*`` variables.
    tracer: Tracer | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        at_least_one = {
            "key_groups": self.key_groups,
            "max_inflight": self.max_inflight,
            "min_inflight": self.min_inflight,
            "dead_letter_after_attempts": self.dead_letter_after_attempts,
            "function_error_attempts": self.function_error_attempts,
            "cache_mib": self.cache_mib,
            "ingress_max_bytes": self.ingress_max_bytes,
        }
        positive = {
            "retry_backoff_initial_s": self.retry_backoff_initial_s,
            "retry_backoff_max_s": self.retry_backoff_max_s,
            "function_error_backoff_s": self.function_error_backoff_s,
            "dedup_window_s": self.dedup_window_s,
            "reply_timeout_s": self.reply_timeout_s,
            "rescan_interval_s": self.rescan_interval_s,
        }
        bad = [f"{k} must be at least 1, got {v}" for k, v in at_least_one.items() if v < 1]
        bad += [f"{k} must be positive, got {v}" for k, v in positive.items() if not v > 0]
        if self.state_cache_addresses < 0:
            bad.append(
                f"state_cache_addresses must not be negative, got {self.state_cache_addresses}"
            )
        if self.shutdown_grace_s < 0:
            bad.append(f"shutdown_grace_s must not be negative, got {self.shutdown_grace_s}")
        if not isinstance(self.http_limits, HttpLimits):
            bad.append(
                f"http_limits must be a pystatefun.http.HttpLimits, got {self.http_limits!r}"
            )
        if self.durability not in ("fsync", "os"):
            bad.append(f"durability must be 'fsync' or 'os', got {self.durability!r}")
        if bad:
            raise ConfigurationError("invalid RuntimeOptions: " + "; ".join(bad))
