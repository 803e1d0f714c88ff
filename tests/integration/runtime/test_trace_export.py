"""``pystatefun run`` exports traces the standard way: ``OTEL_EXPORTER_OTLP_ENDPOINT`` names
the collector, and the spans of a traced ingress request arrive there over OTLP/HTTP.

No OpenTelemetry collector can run here: a stand-in one (a real HTTP server on 127.0.0.1) takes
the export requests and decodes them with OpenTelemetry's own protobuf messages, as a collector
would. The runtime, its functions (embedded) and its data dir are real.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.cluster_counter import counter_module, popped
from support.runtime_process import start_runtime

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@contextmanager
def _collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A stand-in OTLP/HTTP collector: its URL, and the export requests it took."""
    taken: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                taken.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", taken
    finally:
        server.shutdown()
        server.server_close()


def test_pystatefun_run_exports_the_spans_of_a_traced_request_to_the_otlp_endpoint(
    tmp_path: Path,
) -> None:
    with _collector() as (url, taken):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        worker = start_runtime(counter_module(tmp_path), tmp_path / "data", env=env)
        try:
            headers = {"traceparent": TRACEPARENT}
            request = urllib.request.Request(
                f"{worker.ingress}/cl/counter/u1", data=b"", method="POST", headers=headers
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 202
            assert len(popped(worker, 1)) == 1
        finally:
            assert worker.terminate() == 0  # a graceful stop exports what is still buffered
    spans = [
        (span.name, span.trace_id.hex(), resource.resource)
        for export in taken
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = sorted(name for name, _, _ in spans)
    assert names == ["commit", "commit", "ingest cl/counter", "invoke cl/counter",
                     "invoke cl/reporter"]  # fmt: skip
    assert {trace_id for _, trace_id, _ in spans} == {TRACE_ID}
    services = {a.value.string_value for *_, r in spans for a in r.attributes
                if a.key == "service.name"}  # fmt: skip
    assert services == {"pystatefun"}
