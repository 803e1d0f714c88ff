"""The front door of ``pystatefun run``: TLS (a test CA made by ``openssl``) on the ingress,
egress and admin ports, and bearer tokens. A request without the token, or with another,
gets 401 on every port and leaves nothing behind; the probes answer anyone; no token is in
the log. A real process, real sockets on 127.0.0.1."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support.certificates import make_certificates, needs_openssl
from support.cluster_counter import counter_module
from support.runtime_process import start_runtime

pytestmark = needs_openssl

INGRESS_TOKEN, ADMIN_TOKEN = "ingress-s3cr3t-7f2a", "admin-s3cr3t-91bd"
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"


def _call(
    url: str, tls: ssl.SSLContext, *, method: str = "GET", token: str | None = None
) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=b"" if method == "POST" else None,
                                     method=method, headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10, context=tls) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def _messages_in(text: str) -> dict[str, float]:
    return {sample.labels["function_type"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "pystatefun_function_messages_in_total"}  # fmt: skip


def test_every_port_speaks_tls_and_refuses_requests_without_the_token(tmp_path: Path) -> None:
    ca = make_certificates(tmp_path)
    (tmp_path / "ingress.token").write_text(INGRESS_TOKEN + "\n")
    tls = ssl.create_default_context(cafile=ca)
    worker = start_runtime(
        counter_module(tmp_path), tmp_path / "data", "--admin-port", "0",
        "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key"),
        "--ingress-token-file", str(tmp_path / "ingress.token"), "--admin-token", ADMIN_TOKEN,
    )  # fmt: skip
    try:
        ingress, egress, admin = worker.ingress, worker.egress, worker.admin
        assert {url.split("://")[0] for url in (ingress, egress, admin)} == {"https"}
        # No token, a wrong one, the other port's: 401 everywhere, nothing taken or popped.
        for token in (None, "wrong", ADMIN_TOKEN):
            status, body = _call(f"{ingress}/cl/counter/u1", tls, method="POST", token=token)
            assert (status, "bearer token" in body) == (401, True)
            assert _call(f"{egress}/out", tls, token=token)[0] == 401
        for token in (None, "wrong", INGRESS_TOKEN):
            assert _call(f"{admin}/metrics", tls, token=token)[0] == 401
        assert _call(f"{admin}/health", tls) == (200, "alive\n")  # probes need no token
        assert _call(f"{admin}/ready", tls) == (200, "serving\n")
        status, text = _call(f"{admin}/metrics", tls, token=ADMIN_TOKEN)
        assert status == 200
        assert _messages_in(text) == {}  # nothing reached a function
        # With the token: the message goes in, and its record comes out once.
        assert _call(f"{ingress}/cl/counter/u1", tls, method="POST", token=INGRESS_TOKEN)[0] == 202
        record = (404, "")
        for _ in range(500):  # the egress is pull-only: poll, bounded
            record = _call(f"{egress}/out", tls, token=INGRESS_TOKEN)
            if record[0] == 200:
                break
            time.sleep(0.01)
        assert record == (200, "u1:1")
        text = _call(f"{admin}/metrics", tls, token=ADMIN_TOKEN)[1]
        assert _messages_in(text) == {"cl/counter": 1.0, "cl/reporter": 1.0}
        # Plain HTTP on a TLS port is not answered as HTTP.
        plain = ingress.replace("https://", "http://")
        try:
            status = _call(f"{plain}/cl/counter/u2", ssl.create_default_context(),
                           method="POST", token=INGRESS_TOKEN)[0]  # fmt: skip
        except (urllib.error.URLError, ConnectionError):
            status = 0
        assert status != 202
    finally:
        worker.terminate()
    log = worker.log_text()
    assert INGRESS_TOKEN not in log
    assert ADMIN_TOKEN not in log


def test_bad_access_options_are_refused_by_name(tmp_path: Path) -> None:
    module = counter_module(tmp_path)
    (tmp_path / "t").write_text("x")
    cases = [
        (["--ingress-token", "a", "--ingress-token-file", str(tmp_path / "t")],
         "give --ingress-token or --ingress-token-file, not both"),
        (["--tls-cert", str(tmp_path / "t")], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(tmp_path / "t"), "--tls-key", str(tmp_path / "t")],
         "cannot use the TLS certificate"),
    ]  # fmt: skip
    for extra, said in cases:
        run = subprocess.run([PYSTATEFUN, "run", module, "--data-dir", tmp_path / "d", *extra],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert run.returncode != 0, extra
        assert said in run.stderr, (extra, run.stderr)
        assert not (tmp_path / "d").exists()  # a failed command leaves nothing behind
