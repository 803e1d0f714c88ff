"""An https endpoint with mutual TLS: the module's CA bundle verifies the function server, and
the runtime presents the module's client certificate. Certificates are made by ``openssl`` for
this test; the server is our SDK behind aiohttp, with TLS, on 127.0.0.1."""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import web
from support.certificates import make_certificates, needs_openssl
from support.counting_functions import counting
from support.inprocess import post, records, running

from pystatefun.sdk.aiohttp import make_app

pytestmark = needs_openssl


async def test_mutual_tls_endpoint(tmp_path: Path) -> None:
    make_certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tmp_path / "ca.pem")
    server_tls.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server_tls.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no answer
    runner = web.AppRunner(make_app(counting("tls/fn")), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls).start()
    port = runner.addresses[0][1]
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: tls/*\n"
        f"  urlPathTemplate: https://127.0.0.1:{port}/statefun\n  transport:\n"
        "    type: io.statefun.transports.v1/async\n    call: 5s\n"
        "    trust_cacerts: file:ca.pem\n    client_cert: client.pem\n    client_key: client.p8\n"
        "---\nkind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n"
        "---\nkind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
    )
    try:
        async with running(module, tmp_path / "data") as runtime:
            assert (await post(f"{runtime.ingress_url}/tls/fn/a", b"secret"))[0] == 202
            assert await records(runtime, "out", 1) == ["a:secret:1"]
    finally:
        await runner.cleanup()
