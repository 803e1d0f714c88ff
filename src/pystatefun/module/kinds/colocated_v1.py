"""``io.pystatefun.endpoints.v1/colocated``: a function server the runtime starts and keeps alive.

The runtime runs ``command`` when it starts, waits until the server listens, calls it over a
Unix socket (or 127.0.0.1) exactly like a remote endpoint, restarts it with backoff when it
dies, and stops it on shutdown. Annotated example::

    kind: io.pystatefun.endpoints.v1/colocated
    spec:
      functions: shop/*             # required: '<namespace>/*' or '<namespace>/<name>'
      command: [pystatefun, serve, functions.py:functions, --unix-socket, "{socket}"]
                                    # required: the server's argv, run without a shell;
                                    # "{socket}" becomes the socket it must listen on
                                    # (quote placeholders: YAML reads {x} as a mapping)
      listen: unix                  # unix (the default), or tcp: 127.0.0.1 and a free port,
                                    # given to the command as "{host}" and "{port}"
      path: /statefun               # URL path the server answers on; default /statefun
      env:                          # added to the runtime's environment; placeholders work
        LOG_LEVEL: info
      workingDir: .                 # relative to this file; default: this file's directory
      startupTimeout: 30 s          # how long it may take to listen; default 30 s
      restartBackoff:               # the delay before a restart doubles from initial to max
        initial: 500 ms
        max: 30 s
      shutdownGrace: 10 s           # SIGTERM on shutdown, SIGKILL this long after; default 10 s
      maxNumBatchRequests: 1000     # messages per invocation of one address; default 1000
      transport:                    # as for io.statefun.endpoints.v2/http, without TLS
        call: 1 min

``{python}`` in ``command`` or ``env`` is the runtime's own Python interpreter. Nothing is
started or checked on disk until the runtime starts, so ``module validate`` runs anywhere.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from pystatefun.module._components import ColocatedEndpoint, Transport
from pystatefun.module._fields import DurationMs, FunctionsPattern, Integer, TimeoutMs
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate
from pystatefun.module.kinds.endpoints_v2_http import build_transport, written_transport

__all__ = ["KIND", "Spec", "parse"]

KIND = "io.pystatefun.endpoints.v1/colocated"
_SPEC: FieldPath = ("spec",)
#: The placeholders each ``listen`` mode fills in.
_PLACEHOLDERS = {"unix": ("socket", "python"), "tcp": ("host", "port", "python")}
_PLACEHOLDER = re.compile(r"\{(socket|host|port|python)\}")
_TLS_FILES = ("trust_cacerts", "client_cert", "client_key", "client_key_password")


def _quoted_placeholder(value: object) -> object:
    """``- {socket}`` unquoted is the mapping ``{socket: null}`` in YAML: say so."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        name = next(iter(value))
        raise ValueError(
            f'{{{name}}} is read by YAML as a mapping; quote the placeholder: "{{{name}}}"'
        )
    return value


def _argv(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            f"{value!r} is one string; give the command as a list of its words, e.g. "
            '[pystatefun, serve, functions.py:functions, --unix-socket, "{socket}"] '
            "(it runs without a shell)"
        )
    return value


def _command(value: list[str]) -> list[str]:
    if not value[0]:
        raise ValueError("the program (the first word of the command) is empty")
    return value


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} does not start with '/'; e.g. '/statefun'")
    probe = value.replace("{function.name}", "")
    if "{" in probe or "}" in probe:
        raise ValueError(
            f"{value!r} has a placeholder other than {{function.name}}, the only one a path may "
            "have (it becomes the function's name)"
        )
    return value


def _env_name(value: str) -> str:
    if not value or "=" in value or "\0" in value:
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


Text = Annotated[str, Field(strict=True)]
Word = Annotated[str, BeforeValidator(_quoted_placeholder), Field(strict=True)]
Command = Annotated[
    list[Word], BeforeValidator(_argv), Field(min_length=1), AfterValidator(_command)
]
UrlPath = Annotated[str, Field(strict=True), AfterValidator(_path)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class RestartBackoff(BaseModel):
    """``restartBackoff:``: the delay before the first restart, and the most it doubles to."""

    model_config = SPEC_CONFIG

    initial: TimeoutMs = 500
    maximum: TimeoutMs = Field(30_000, alias="max")


class Spec(BaseModel):
    """``spec:`` of an ``io.pystatefun.endpoints.v1/colocated`` document."""

    model_config = SPEC_CONFIG

    functions: FunctionsPattern
    command: Command
    listen: Literal["unix", "tcp"] = "unix"
    path: UrlPath = "/statefun"
    env: dict[EnvName, Word] = Field(default_factory=dict)
    working_dir: Text = Field(".", alias="workingDir", min_length=1)
    startup_timeout: TimeoutMs = Field(30_000, alias="startupTimeout")
    restart_backoff: RestartBackoff | None = Field(None, alias="restartBackoff")
    shutdown_grace: DurationMs = Field(10_000, alias="shutdownGrace")
    max_num_batch_requests: Integer = Field(1000, alias="maxNumBatchRequests")
    # Validated by the model of the transport type it names, once that type is known.
    transport: dict[str, Any] | None = None


def parse(document: SourceDocument) -> ColocatedEndpoint:
    """The endpoint that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    transport = problems.attempt(partial(_transport, document, written_transport(document)))
    if spec is not None:
        _check_placeholders(document, spec, problems)
        _check_backoff(document, spec, problems)
    if spec is None or transport is None or problems.found:
        raise problems.error()
    backoff = _backoff(spec)
    return ColocatedEndpoint(
        functions=spec.functions,
        command=tuple(spec.command),
        listen=spec.listen,
        path=spec.path,
        env=tuple(spec.env.items()),
        working_dir=document.absolute.parent / spec.working_dir,
        startup_timeout_s=spec.startup_timeout / 1000,
        restart_backoff_initial_s=backoff.initial / 1000,
        restart_backoff_max_s=backoff.maximum / 1000,
        shutdown_grace_s=spec.shutdown_grace / 1000,
        max_num_batch_requests=spec.max_num_batch_requests,
        transport=transport,
        location=document.location(),
    )


def _backoff(spec: Spec) -> RestartBackoff:
    return spec.restart_backoff or RestartBackoff.model_validate({})


def _check_backoff(document: SourceDocument, spec: Spec, problems: Problems) -> None:
    backoff = _backoff(spec)
    if backoff.maximum < backoff.initial:
        problems.add(
            document.problem(
                ("spec", "restartBackoff", "max"),
                f"max ({backoff.maximum} ms) is shorter than initial ({backoff.initial} ms); the "
                "delay doubles from initial up to max",
            )
        )


def _check_placeholders(document: SourceDocument, spec: Spec, problems: Problems) -> None:
    """A placeholder of the other ``listen`` mode would reach the server unreplaced."""
    known = _PLACEHOLDERS[spec.listen]
    words: list[tuple[FieldPath, str]] = [
        (("spec", "command", index), word) for index, word in enumerate(spec.command)
    ]
    words += [(("spec", "env", name), value) for name, value in spec.env.items()]
    for path, word in words:
        for name in _PLACEHOLDER.findall(word):
            if name not in known:
                listed = ", ".join(f"{{{n}}}" for n in known)
                other = "tcp" if spec.listen == "unix" else "unix"
                problems.add(
                    document.problem(
                        path,
                        f"{{{name}}} is only set with `listen: {other}`; with `listen: "
                        f"{spec.listen}` the placeholders are {listed}",
                    )
                )


def _transport(document: SourceDocument, raw: dict[str, Any] | None) -> Transport:
    path = ("spec", "transport")
    transport = build_transport(document, raw, path)
    problems = Problems()
    for name in _TLS_FILES:
        if getattr(transport, name) is not None:
            problems.add(
                document.problem(
                    (*path, name),
                    "a co-located server is called over a Unix socket or 127.0.0.1 without "
                    "TLS; remove the TLS settings",
                )
            )
    problems.raise_any()
    return transport
