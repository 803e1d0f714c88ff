"""An https endpoint with mutual TLS: the module's CA bundle verifies the function server, and
the runtime presents the module's client certificate. Certificates are made by ``openssl`` for
this test; the server is our SDK behind aiohttp, with TLS, on 127.0.0.1."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web
from support.counting_functions import counting
from support.inprocess import post, records, running

from pystatefun.sdk.aiohttp import make_app

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _certificates(tmp: Path) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=pystatefun-test-ca",
        cwd=tmp,
    )
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=tmp,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            cwd=tmp,
        )
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-out", "client.p8", cwd=tmp)


async def test_mutual_tls_endpoint(tmp_path: Path) -> None:
    _certificates(tmp_path)
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
