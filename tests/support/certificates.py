"""A test certificate authority, a server and a client certificate for 127.0.0.1, made by the
``openssl`` CLI in the test's directory (``ca.pem``; ``server.pem``/``server.key``;
``client.pem``/``client.key``, and ``client.p8``: the client key as PKCS#8, as StateFun's
transport takes it). Valid for a day."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["make_certificates", "needs_openssl"]

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Path:
    """Make them in ``directory``; returns the CA bundle's path."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "1", "-subj", "/CN=pystatefun-test-ca", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext",
                 cwd=directory)  # fmt: skip
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-out", "client.p8",
             cwd=directory)  # fmt: skip
    return directory / "ca.pem"
