"""``io.statefun.transports.v1/async``: StateFun's default HTTP transport since 3.2 (Netty).

A v2 endpoint uses it when ``transport`` is absent, has no ``type``, or names this type::

    kind: io.statefun.endpoints.v2/http
    spec:
      functions: com.example/*
      urlPathTemplate: https://functions.example.com/{function.name}
      transport:
        type: io.statefun.transports.v1/async  # optional: this is the default
        call: 2 min               # the whole call, retries included; default 2 min
        connect: 20 s             # one connection attempt; default 20 s; at most `call`
        pool_ttl: 15 s            # how long an idle connection stays pooled; 0: no reuse
        pool_size: 1024           # pooled connections to this endpoint; default 1024
        payload_max_bytes: 33554432   # request and response size cap; default 32 MiB
        trust_cacerts: ca.pem     # TLS: CA certificates to trust (path, relative to this file)
        client_cert: client.crt   # mutual TLS: client certificate, given with client_key
        client_key: client.key.p8 # mutual TLS: PKCS#8 private key
        client_key_password: key-password.txt  # a file holding the key's password
        # instead of call/connect, StateFun also takes OkHttp-style timeouts, whose call wins:
        # timeouts: {call: 1 min, connect: 10 s, read: 10 s, write: 10 s}

Without ``timeouts`` there are no read or write timeouts: only the call budget bounds them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from pystatefun.module._components import Transport
from pystatefun.module._fields import DurationMs, PositiveInt, TimeoutMs
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate
from pystatefun.module.kinds.transports_v1_okhttp import Timeouts, timeouts_within_call

__all__ = ["KIND", "Spec", "build"]

KIND = Transport.ASYNC
_TLS_FILES = ("trust_cacerts", "client_cert", "client_key", "client_key_password")
_FilePath = Annotated[str, Field(strict=True, min_length=1)]


class Spec(BaseModel):
    """``transport:`` of the async type."""

    model_config = SPEC_CONFIG

    type: str | None = None
    call: TimeoutMs = 120_000
    connect: TimeoutMs = 20_000
    pool_ttl: DurationMs = 15_000
    pool_size: PositiveInt = 1024
    payload_max_bytes: PositiveInt = 33_554_432
    timeouts: Timeouts | None = None
    trust_cacerts: _FilePath | None = None
    client_cert: _FilePath | None = None
    client_key: _FilePath | None = None
    client_key_password: _FilePath | None = None


def build(document: SourceDocument, raw: object, path: FieldPath) -> Transport:
    """The transport that ``raw`` (the ``transport`` mapping at ``path``, or ``None``)
    describes."""
    spec = validate(document, Spec, {} if raw is None else raw, path)
    problems = Problems()
    timeouts = spec.timeouts
    if timeouts is not None:
        for ignored in sorted({"call", "connect"} & spec.model_fields_set):
            document.warn(
                (*path, ignored),
                f"ignored because `timeouts` is given: timeouts.{ignored} wins (default "
                f"{'1 min' if ignored == 'call' else '10 s'}), as in StateFun; keep one of them",
            )
        phases = {"connect": timeouts.connect, "read": timeouts.read, "write": timeouts.write}
        check = partial(
            timeouts_within_call,
            document,
            (*path, "timeouts"),
            timeouts.call,
            phases,
            timeouts.model_fields_set,
        )
    else:
        check = partial(
            timeouts_within_call,
            document,
            path,
            spec.call,
            {"connect": spec.connect},
            spec.model_fields_set,
        )
    millis = problems.attempt(check)
    files = problems.attempt(partial(_tls_files, document, spec, path))
    if millis is None or files is None:
        raise problems.error()
    # Without `timeouts` only the call budget bounds reads and writes, as in StateFun.
    phased = timeouts is not None
    return Transport(
        kind=KIND,
        call_timeout_s=millis["call"] / 1000,
        connect_timeout_s=millis["connect"] / 1000,
        read_timeout_s=millis["read"] / 1000 if phased else None,
        write_timeout_s=millis["write"] / 1000 if phased else None,
        pool_ttl_s=spec.pool_ttl / 1000,
        pool_size=spec.pool_size,
        payload_max_bytes=spec.payload_max_bytes,
        **files,
    )


def _tls_files(document: SourceDocument, spec: Spec, path: FieldPath) -> dict[str, Path]:
    """The TLS files as absolute paths: relative ones are relative to the module file, so a
    module works from any working directory. ``file:`` prefixes are accepted, as in StateFun."""
    files: dict[str, Path] = {}
    problems = Problems()
    for name in _TLS_FILES:
        value: str | None = getattr(spec, name)
        if value is None:
            continue
        if value.startswith("classpath:"):
            problems.add(
                document.problem(
                    (*path, name),
                    f"{value!r} is a JVM classpath resource; give a file path instead "
                    "(relative paths are relative to the module file)",
                )
            )
        location = Path(value.removeprefix("file://").removeprefix("file:"))
        files[name] = document.absolute.parent / location
    if ("client_cert" in files) != ("client_key" in files):
        missing = "client_key" if "client_cert" in files else "client_cert"
        problems.add(
            document.problem(
                (*path, missing),
                "required for mutual TLS: give client_cert and client_key together",
            )
        )
    problems.raise_any()
    return files
