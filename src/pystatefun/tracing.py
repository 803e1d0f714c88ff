"""``Tracer``: OpenTelemetry spans along a message's path (the ``otel`` extra).

A W3C ``traceparent`` on an ingress request is continued, span by span: ``ingest`` (the
request, until it is answered), ``invoke`` (each batch of an address, with the batch's
messages' contexts: the first as its parent, the others as links), ``commit`` (the step of that
batch until it is durable), and the messages the function sends carry the ``invoke`` span's
context on to their own invocations. A remote function gets the ``invoke`` span as the
``traceparent`` header of its request, so its own spans (if it traces) join the trace.

The runtime holds no OpenTelemetry object unless tracing is configured: ``from_environment``
reads the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_EXPORTER``,
``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ...) and returns None when none asks for traces,
so a runtime without them pays one ``is None`` test per step.

A trace context travels with a message in memory, and a delayed message keeps it in the store
(``TimerRecord.trace``) until it fires; any other message read back from the data dir (after a
restart, a re-drive, or on a cluster from another worker) starts a new trace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, final

from pystatefun.errors import ConfigurationError

if TYPE_CHECKING:  # imported when a Tracer is made: a runtime without traces never loads them
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["TraceSpan", "Tracer", "from_environment", "traceparent_of"]

Kind = Literal["server", "client", "internal"]
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_EXPORTERS = ("otlp", "console", "none")


def traceparent_of(context: trace.SpanContext) -> str:
    """The W3C ``traceparent`` header of a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _unsampled(traceparent: str) -> bool:
    """Whether a well-formed ``traceparent`` says its trace is not sampled (flags bit 0)."""
    try:
        return len(traceparent) == 55 and not int(traceparent[53:], 16) & 1
    except ValueError:
        return False


@final
class TraceSpan:
    """One started span; ``traceparent`` is what its children and sent messages carry."""

    __slots__ = ("_span", "_tracer", "traceparent")

    def __init__(self, span: trace.Span, tracer: Tracer, traceparent: str | None = None) -> None:
        self._span, self._tracer = span, tracer
        self.traceparent = traceparent or traceparent_of(span.get_span_context())

    def child(self, name: str) -> TraceSpan:
        """A span under this one (the ``commit`` of an ``invoke``); none under one that is
        not recorded (an unsampled trace)."""
        return self._tracer.under(self._span, name) if self._span.is_recording() else self

    def end(self, error: str | None = None) -> None:
        """End the span; ``error`` marks it failed, with the reason."""
        if error is not None:
            from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 - loaded by now

            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()


@final
class Tracer:
    """Starts spans on ``provider`` (the SDK's, set up by ``from_environment`` or a test)."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - see TYPE_CHECKING above
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        self._provider, self._api = provider, trace
        self._tracer = provider.get_tracer("pystatefun")
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = {"server": trace.SpanKind.SERVER, "client": trace.SpanKind.CLIENT,
                       "internal": trace.SpanKind.INTERNAL}  # fmt: skip
        # A parent-based sampler (the default, and every parentbased_* of OTEL_TRACES_SAMPLER)
        # records nothing under an unsampled parent: such a parent is passed on as it is,
        # without spans, which is most of tracing's cost when few traces are sampled.
        sampler = provider.sampler.get_description()
        self._passes_unsampled = all(f"{side}ParentNotSampled:AlwaysOffSampler" in sampler
                                     for side in ("remote", "local"))  # fmt: skip

    def _context_of(self, traceparent: str | None) -> trace.SpanContext | None:
        """The span context a ``traceparent`` names; None when absent or malformed (a bad
        header starts a new trace rather than failing the request)."""
        if not traceparent:
            return None
        carried = self._propagator.extract({"traceparent": traceparent})
        context = self._api.get_current_span(carried).get_span_context()
        return context if context.is_valid else None

    def start(
        self,
        name: str,
        *,
        parent: str | None,
        kind: Kind = "internal",
        attributes: Mapping[str, str | int] | None = None,
        links: Sequence[str | None] = (),
    ) -> TraceSpan:
        """A span named ``name``, a child of the ``parent`` traceparent (None or malformed: a
        new trace), linked to the ``links`` traceparents."""
        if parent is not None and self._passes_unsampled and _unsampled(parent):
            return TraceSpan(self._api.INVALID_SPAN, self, parent)
        api = self._api
        parent_context = self._context_of(parent)
        span = api.INVALID_SPAN if parent_context is None else api.NonRecordingSpan(parent_context)
        linked = [
            api.Link(c) for t in links if t != parent and (c := self._context_of(t)) is not None
        ]
        started = self._tracer.start_span(
            name, context=api.set_span_in_context(span), kind=self._kinds[kind],
            attributes=attributes, links=linked,
        )  # fmt: skip
        return TraceSpan(started, self)

    def under(self, span: trace.Span, name: str) -> TraceSpan:
        """A span named ``name`` under ``span``."""
        context = self._api.set_span_in_context(span)
        return TraceSpan(self._tracer.start_span(name, context=context), self)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (the runtime calls it when it stops)."""
        self._provider.shutdown()


def _exporter(name: str) -> SpanExporter:
    if name == "console":  # stderr: stdout carries the runtime's own lines
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return ConsoleSpanExporter(out=sys.stderr)
    env = os.environ
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    if protocol not in ("", "http/protobuf"):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: pystatefun exports traces over OTLP "
            "http/protobuf only; unset it, or set it to http/protobuf (a collector's port 4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()  # the endpoint, headers and timeout from the environment


def from_environment() -> Tracer | None:
    """A tracer exporting as the standard ``OTEL_*`` variables say; None when they ask for no
    traces (no OTLP endpoint and no ``OTEL_TRACES_EXPORTER``, or ``OTEL_SDK_DISABLED=true``)."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporter and not any(env.get(name) for name in _ENDPOINTS):
        return None
    exporter = exporter or "otlp"
    if exporter == "none":
        return None
    if exporter not in _EXPORTERS:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not one pystatefun knows: "
            f"{', '.join(_EXPORTERS)}"
        )
    try:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(
            "traces are asked for (OTEL_TRACES_EXPORTER or an OTLP endpoint is set) but "
            f"OpenTelemetry is not installed ({exc}): pip install 'pystatefun[otel]', or unset "
            "them"
        ) from exc
    named = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "pystatefun"}
    provider = TracerProvider(resource=Resource.create(named))
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    return Tracer(provider)
