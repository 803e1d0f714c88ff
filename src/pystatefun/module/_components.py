"""What a module declares, as the runtime consumes it: endpoints, ingresses and egresses.

These are plain frozen values, already validated and with defaults filled in, so the runtime
never sees YAML and never re-checks a field. Each carries the ``Location`` it was declared at,
so a runtime error about a component can still point at its line. Locations do not take part in
equality: two endpoints with the same settings are equal wherever they were written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, final

from pystatefun.module._kinesis_components import (
    AwsCredentials,
    AwsRegion,
    KinesisEgress,
    KinesisIngress,
    KinesisStream,
)
from pystatefun.module._location import Location
from pystatefun.types import split_typename

__all__ = [
    "EGRESS_TYPES",
    "ENDPOINT_TYPES",
    "INGRESS_TYPES",
    "AwsCredentials",
    "AwsRegion",
    "ColocatedEndpoint",
    "EgressSpec",
    "EmbeddedEndpoint",
    "Endpoint",
    "HttpEndpoint",
    "IngressSpec",
    "KafkaEgress",
    "KafkaIngress",
    "KafkaTopic",
    "KinesisEgress",
    "KinesisIngress",
    "KinesisStream",
    "Location",
    "Module",
    "PlaygroundEgress",
    "PlaygroundIngress",
    "Transport",
]

_PLACEHOLDER = "{function.name}"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Transport:
    """How the runtime talks HTTP to one endpoint: time budgets, the connection pool, TLS.

    ``call_timeout_s`` bounds a whole call including its retries; ``connect_timeout_s``,
    ``read_timeout_s`` and ``write_timeout_s`` bound one attempt's phases (``None``: only the
    call budget applies, as for StateFun's async transport without ``timeouts``).
    ``pool_ttl_s`` is how long an idle pooled connection is kept (0: connections are not reused).
    The TLS files (absolute paths) are only set for the async transport.
    """

    ASYNC: ClassVar[str] = "io.statefun.transports.v1/async"
    OKHTTP: ClassVar[str] = "io.statefun.transports.v1/okhttp"

    kind: str
    call_timeout_s: float
    connect_timeout_s: float
    read_timeout_s: float | None
    write_timeout_s: float | None
    pool_ttl_s: float
    pool_size: int
    payload_max_bytes: int
    trust_cacerts: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    client_key_password: Path | None = None


def _serves(functions: str, typename: str) -> bool:
    """Whether the pattern ``functions`` covers the function type ``typename``.

    A namespace pattern matches on the whole namespace (the part before the last ``/``),
    so ``com.example/*`` matches ``com.example/greeter`` but not ``com.example.v2/greeter``.
    A malformed type name matches nothing.
    """
    parts = split_typename(typename)
    if parts is None:
        return False
    if functions.endswith("/*"):
        return functions[:-2] == parts[0]
    return functions == typename


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class HttpEndpoint:
    """Remote functions served over HTTP: which types (``functions``), where, and how.

    ``functions`` is ``"<namespace>/*"`` (every type of that namespace) or
    ``"<namespace>/<name>"`` (one type). ``max_num_batch_requests`` bounds how many messages one
    invocation of an address carries; like StateFun, a value of 0 or less means no bound.
    """

    functions: str
    url_path_template: str
    max_num_batch_requests: int = 1000
    transport: Transport
    location: Location = field(compare=False)

    def matches(self, typename: str) -> bool:
        """Whether this endpoint serves the function type ``typename`` (``namespace/name``)."""
        return _serves(self.functions, typename)

    def url_for(self, typename: str) -> str:
        """The URL to POST invocations of ``typename`` to: ``{function.name}`` in the template
        becomes the function's name (the part after the last ``/``), never its namespace."""
        return self.url_path_template.replace(_PLACEHOLDER, typename.rpartition("/")[2])


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedEndpoint:
    """Python functions that run inside the runtime process, like stored procedures.

    ``import_path`` names a ``StatefulFunctions`` object: ``FILE.py:NAME`` (``FILE`` absolute, or
    relative to the module file) or ``package.module:NAME``. ``execution`` says where plain
    (non-``async``) functions run: ``loop`` runs them on the runtime's event loop, which is
    the fastest and never runs two of them at once, but a function that blocks stalls every
    address; ``threads`` runs them on a pool of ``threads`` threads, so a blocking function
    holds up only its own address. ``async def`` functions always run on the event loop.
    """

    LOOP: ClassVar[str] = "loop"
    THREADS: ClassVar[str] = "threads"

    functions: str
    import_path: str
    max_num_batch_requests: int = 1000
    execution: str = "loop"
    threads: int = 8
    location: Location = field(compare=False)
    import_location: Location | None = field(default=None, compare=False)

    def matches(self, typename: str) -> bool:
        """Whether this endpoint serves the function type ``typename`` (``namespace/name``)."""
        return _serves(self.functions, typename)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ColocatedEndpoint:
    """Functions served by a process the runtime starts, keeps alive and stops with itself.

    ``command`` is the server's argv as written, placeholders included: the runtime replaces
    ``{socket}`` (``listen`` unix), ``{host}`` and ``{port}`` (``listen`` tcp) and ``{python}``
    (its own interpreter) when it starts the server, and passes the same values in ``env`` as
    ``PYSTATEFUN_SOCKET``, ``PYSTATEFUN_HOST`` and ``PYSTATEFUN_PORT``. ``path`` is the URL path
    the server answers on (``{function.name}`` allowed); ``working_dir`` is absolute. The server
    is called like an ``HttpEndpoint`` with ``transport``, over the socket or loopback.
    """

    UNIX: ClassVar[str] = "unix"
    TCP: ClassVar[str] = "tcp"

    functions: str
    command: tuple[str, ...]
    listen: str = "unix"
    path: str = "/statefun"
    env: tuple[tuple[str, str], ...] = ()
    working_dir: Path
    startup_timeout_s: float = 30.0
    restart_backoff_initial_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    shutdown_grace_s: float = 10.0
    max_num_batch_requests: int = 1000
    transport: Transport
    location: Location = field(compare=False)

    def matches(self, typename: str) -> bool:
        """Whether this endpoint serves the function type ``typename`` (``namespace/name``)."""
        return _serves(self.functions, typename)


#: Every kind of endpoint a module can declare; each has ``functions`` and ``matches``.
Endpoint = HttpEndpoint | EmbeddedEndpoint | ColocatedEndpoint
ENDPOINT_TYPES = (HttpEndpoint, EmbeddedEndpoint, ColocatedEndpoint)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PlaygroundIngress:
    """StateFun's local-development HTTP ingress: any request to ``/<namespace>/<type>/<id>``
    on ``port`` sends its body to that address. ``port`` 0 means "pick a free port"."""

    KIND: ClassVar[str] = "io.statefun.playground.v1/ingress"
    ID: ClassVar[str] = "io.statefun.playground/ingress"

    port: int
    location: Location = field(compare=False)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PlaygroundEgress:
    """StateFun's local-development HTTP egress: ``GET /<topic>`` on ``port`` pops one record.

    Functions write to it through the egress id ``io.statefun.playground/egress``; only the
    ``topics`` listed here exist. ``port`` 0 means "pick a free port".
    """

    KIND: ClassVar[str] = "io.statefun.playground.v1/egress"
    ID: ClassVar[str] = "io.statefun.playground/egress"

    port: int
    topics: tuple[str, ...]
    location: Location = field(compare=False)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaTopic:
    """One topic a Kafka ingress reads: its records' values are ``value_type`` typed values,
    each sent to every function type of ``targets`` with the record's key as the id."""

    topic: str
    value_type: str
    targets: tuple[str, ...]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaIngress:
    """StateFun's Kafka ingress: ``topics`` read from the brokers ``bootstrap_servers``, the
    offsets read committed to the consumer group ``consumer_group_id``.

    ``startup_position`` is where a partition with no stored position starts: ``group-offsets``
    (the group's committed offsets, else ``auto_offset_reset``), ``earliest``, ``latest``,
    ``specific-offsets`` (``specific_offsets``: (topic, partition, offset) each) or ``date``
    (``startup_date_ms``). ``properties`` go to the Kafka client as they are (security settings,
    say); the named fields win over them.
    """

    KIND: ClassVar[str] = "io.statefun.kafka.v1/ingress"
    STARTUP_POSITIONS: ClassVar[tuple[str, ...]] = (
        "group-offsets",
        "earliest",
        "latest",
        "specific-offsets",
        "date",
    )

    id: str
    bootstrap_servers: str
    consumer_group_id: str
    topics: tuple[KafkaTopic, ...]
    startup_position: str = "latest"
    specific_offsets: tuple[tuple[str, int, int], ...] = ()
    startup_date_ms: int | None = None
    auto_offset_reset: str = "latest"
    properties: tuple[tuple[str, str], ...] = ()
    location: Location = field(compare=False)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaEgress:
    """StateFun's Kafka egress ``id``: records functions send with the SDK's Kafka egress
    record, published to ``bootstrap_servers`` with ``delivery_semantic`` (``none``,
    ``at-least-once`` or ``exactly-once``, transactions of at most ``transaction_timeout_ms``).
    """

    KIND: ClassVar[str] = "io.statefun.kafka.v1/egress"
    DELIVERY_SEMANTICS: ClassVar[tuple[str, ...]] = ("none", "at-least-once", "exactly-once")

    id: str
    bootstrap_servers: str
    delivery_semantic: str = "at-least-once"
    transaction_timeout_ms: int = 15 * 60 * 1000
    properties: tuple[tuple[str, str], ...] = ()
    location: Location = field(compare=False)


#: Every kind of ingress and egress a module can declare; each has ``KIND``, its module kind,
#: by which ``pystatefun.io.registry`` finds its connector.
IngressSpec = PlaygroundIngress | KafkaIngress | KinesisIngress
EgressSpec = PlaygroundEgress | KafkaEgress | KinesisEgress
INGRESS_TYPES = (PlaygroundIngress, KafkaIngress, KinesisIngress)
EGRESS_TYPES = (PlaygroundEgress, KafkaEgress, KinesisEgress)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    """A loaded module file: its components in file order, and the warnings loading it gave.

    Two modules are equal when they declare the same components, whichever file they came from.
    """

    source: Path = field(compare=False)
    endpoints: tuple[Endpoint, ...] = ()
    ingresses: tuple[IngressSpec, ...] = ()
    egresses: tuple[EgressSpec, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
    _by_pattern: dict[str, Endpoint] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # The loader guarantees unique patterns; for hand-built modules the first one wins,
        # as it would in file order.
        for endpoint in reversed(self.endpoints):
            self._by_pattern[endpoint.functions] = endpoint

    def endpoint_for(self, typename: str) -> Endpoint | None:
        """The endpoint serving ``typename``: an endpoint for exactly that type wins over one
        for its whole namespace, as in StateFun. ``None`` when no endpoint serves it."""
        parts = split_typename(typename)
        if parts is None:
            return None
        specific = self._by_pattern.get(typename)
        return specific if specific is not None else self._by_pattern.get(f"{parts[0]}/*")
