"""Traces: a W3C ``traceparent`` on an ingress request is continued through the invocation,
the commit and the messages the function sends, and passed to remote functions.

A real runtime on a real SQLite data dir, real HTTP on 127.0.0.1, functions served by our SDK
over HTTP and embedded ones. No OpenTelemetry collector can run here, so the spans go to the
SDK's in-memory exporter (``InMemorySpanExporter``); the OTLP export of ``pystatefun run``
is checked in ``test_trace_export.py`` against a stand-in collector.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.counting_functions import emit
from support.inprocess import post, raw_server, records, running, wait_for
from support.inprocess import write_module as module_file

from pystatefun.sdk import Context, Message, RequestReplyHandler, StatefulFunctions, message_builder
from pystatefun.tracing import Tracer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def _tracer() -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracer(provider), exporter


def _chain() -> StatefulFunctions:
    """``a/first`` sends each message on to ``a/second``, which writes it to the egress."""
    functions = StatefulFunctions()

    @functions.bind("a/first")
    def first(context: Context, message: Message) -> None:
        context.send(message_builder("a/second", context.address.id, str_value=message.as_string()))

    @functions.bind("a/second")
    def second(context: Context, message: Message) -> None:
        emit(context, message.as_string())

    return functions


def _span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def _parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    """The spans other than commits, by name (one of each)."""
    named = {s.name: s for s in spans if s.name != "commit"}
    assert len(named) == len(spans) - 2, [s.name for s in spans]
    return named


async def _through(
    tmp_path: Path,
    headers: dict[str, str],
    *,
    tracer: Tracer | None,
    functions: StatefulFunctions | None = None,
    spans: InMemorySpanExporter | None = None,
) -> list[str | None]:
    """Send one message, ``hi`` with ``headers``, to ``a/first/x`` of ``functions`` (the
    chain) served over HTTP, until its record is out and, with ``spans``, its 5 spans ended;
    the traceparent each function request carried, in order."""
    handler, carried = RequestReplyHandler(functions or _chain()), []

    async def serve(request: web.Request) -> web.Response:
        carried.append(request.headers.get("traceparent"))
        return web.Response(body=await handler.handle_async(await request.read()))

    async with raw_server(serve) as url:
        module = module_file(tmp_path / "m.yaml", {"a/*": url})
        async with running(module, tmp_path / "data", tracer=tracer) as runtime:
            status, _, _ = await post(f"{runtime.ingress_url}/a/first/x", b"hi", headers)
            assert status == 202
            assert await records(runtime, "out", 1) == ["hi"]
            if spans is not None:
                await wait_for(lambda: len(spans.get_finished_spans()) == 5)
    return carried


async def _traced_chain(
    tmp_path: Path, headers: dict[str, str]
) -> tuple[dict[str, ReadableSpan], list[str | None]]:
    """Send one message with ``headers`` through the chain; its spans, and the traceparent
    each function request carried (in order)."""
    tracer, exporter = _tracer()
    carried = await _through(tmp_path, headers, tracer=tracer, spans=exporter)
    return _by_name(exporter.get_finished_spans()), carried


async def test_a_traceparent_is_continued_through_invocations_commits_and_sent_messages(
    tmp_path: Path,
) -> None:
    spans, carried = await _traced_chain(tmp_path, {"traceparent": TRACEPARENT})
    ingest, first, second = (
        spans["ingest a/first"],
        spans["invoke a/first"],
        spans["invoke a/second"],
    )
    assert {f"{s.context.trace_id:032x}" for s in spans.values() if s.context} == {TRACE_ID}
    assert _parent_id(ingest) == CALLER_SPAN
    assert ingest.kind is SpanKind.SERVER
    assert _parent_id(first) == _span_id(ingest)
    assert _parent_id(second) == _span_id(first)  # the message first sent carried its span
    assert first.kind is second.kind is SpanKind.CLIENT
    assert first.attributes is not None
    assert first.attributes["pystatefun.address"] == "a/first/x"
    # Each remote function was called with its invocation's span as the parent.
    assert carried == [
        f"00-{TRACE_ID}-{_span_id(first)}-01",
        f"00-{TRACE_ID}-{_span_id(second)}-01",
    ]
    assert all(s.status.status_code is not StatusCode.ERROR for s in spans.values())


async def test_each_invocation_has_its_commit_under_it(tmp_path: Path) -> None:
    tracer, exporter = _tracer()
    await _through(tmp_path, {"traceparent": TRACEPARENT}, tracer=tracer, spans=exporter)
    spans = exporter.get_finished_spans()
    invokes = {_span_id(s): s.name for s in spans if s.name.startswith("invoke")}
    commits = [s for s in spans if s.name == "commit"]
    assert sorted(invokes[_parent_id(c) or ""] for c in commits) == ["invoke a/first",
                                                                     "invoke a/second"]  # fmt: skip
    for commit in commits:  # a commit ends before the invocation it belongs to
        parent = next(s for s in spans if _span_id(s) == _parent_id(commit))
        assert commit.end_time is not None
        assert parent.end_time is not None
        assert commit.end_time <= parent.end_time


async def test_without_a_traceparent_the_ingress_starts_the_trace_and_a_bad_one_is_ignored(
    tmp_path: Path,
) -> None:
    for headers in ({}, {"traceparent": "00-not-a-trace-context"}):
        (here := tmp_path / str(len(headers))).mkdir()
        spans, carried = await _traced_chain(here, headers)
        ingest = spans["ingest a/first"]
        assert ingest.parent is None  # a new trace, and the request was taken (202 above)
        assert ingest.context is not None
        trace_id = f"{ingest.context.trace_id:032x}"
        assert trace_id != TRACE_ID
        assert {f"{s.context.trace_id:032x}" for s in spans.values() if s.context} == {trace_id}
        assert _parent_id(spans["invoke a/second"]) == _span_id(spans["invoke a/first"])
        assert all(c is not None and c.split("-")[1] == trace_id for c in carried)


async def test_an_unsampled_trace_is_passed_on_to_the_functions_without_spans(
    tmp_path: Path,
) -> None:
    """Under the default (parent-based) sampler nothing is recorded under an unsampled caller;
    its traceparent still reaches the functions, so they too know not to sample."""
    unsampled = f"00-{TRACE_ID}-{CALLER_SPAN}-00"
    tracer, exporter = _tracer()
    carried = await _through(tmp_path, {"traceparent": unsampled}, tracer=tracer)
    assert carried == [unsampled, unsampled]
    assert exporter.get_finished_spans() == ()


async def test_without_a_tracer_no_traceparent_reaches_the_functions(tmp_path: Path) -> None:
    carried = await _through(tmp_path, {"traceparent": TRACEPARENT}, tracer=None)
    assert carried == [None, None]


EMBEDDED = """\
from pystatefun.sdk import StatefulFunctions, egress_message_builder, make_json_type
from pystatefun.sdk import message_builder

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("local/first")
def first(context, message):
    context.send(message_builder("local/second", context.address.id, str_value="on"))


@functions.bind("local/second")
def second(context, message):
    record = {"topic": "out", "payload": message.as_string()}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
"""


async def test_embedded_functions_continue_the_trace_through_their_early_commits(
    tmp_path: Path,
) -> None:
    """Embedded steps are handed on before they are durable (their commit spans end when they
    are): the chain of parents is the same as for remote functions."""
    (tmp_path / "traced_fns.py").write_text(EMBEDDED)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: local/*\n"
        "  import: traced_fns.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
    )
    tracer, exporter = _tracer()
    async with running(module, tmp_path / "data", tracer=tracer) as runtime:
        await post(f"{runtime.ingress_url}/local/first/x", b"go", {"traceparent": TRACEPARENT})
        assert await records(runtime, "out", 1) == ["on"]
        await wait_for(lambda: len(exporter.get_finished_spans()) == 5)
    spans = exporter.get_finished_spans()
    named = {s.name: s for s in spans if s.name != "commit"}
    first, second = named["invoke local/first"], named["invoke local/second"]
    assert _parent_id(first) == _span_id(named["ingest local/first"])
    assert _parent_id(second) == _span_id(first)
    assert first.kind is SpanKind.INTERNAL
    commits = sorted(_parent_id(s) or "" for s in spans if s.name == "commit")
    assert commits == sorted([_span_id(first), _span_id(second)])


async def test_a_delayed_message_continues_its_senders_trace_when_it_fires(
    tmp_path: Path,
) -> None:
    """The delayed message is stored with the sender's context (a timer in the data dir),
    and its invocation, a moment later, is a child of the invocation that sent it."""
    functions = StatefulFunctions()

    @functions.bind("a/first")
    def first(context: Context, message: Message) -> None:
        later = message_builder("a/second", context.address.id, str_value=message.as_string())
        context.send_after(timedelta(milliseconds=50), later)

    @functions.bind("a/second")
    def second(context: Context, message: Message) -> None:
        emit(context, message.as_string())

    tracer, exporter = _tracer()
    headers = {"traceparent": TRACEPARENT}
    await _through(tmp_path, headers, tracer=tracer, functions=functions, spans=exporter)
    spans = _by_name(exporter.get_finished_spans())
    assert _parent_id(spans["invoke a/second"]) == _span_id(spans["invoke a/first"])
    assert {f"{s.context.trace_id:032x}" for s in spans.values() if s.context} == {TRACE_ID}
