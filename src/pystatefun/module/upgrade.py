"""Convert StateFun 2.x and 3.0 module files to the 3.1+ ``kind``/``spec`` format.

``pystatefun module upgrade FILE`` runs this. The 3.0 format converts completely, the way
StateFun 3.1 does it internally (``LegacyRemoteModuleV30``): an ``http`` endpoint becomes
``io.statefun.endpoints.v1/http`` with the same spec, and ``io.statefun.kafka/ingress`` (and
egress, and Kinesis) become their ``.v1`` kinds with ``spec.id`` taken from ``meta.id``.

A 2.x module (format 1.0 or 2.0) converts only in part, because its functions speak the 2.x
protocol: each ``function`` becomes an endpoint for its one type, and a comment lists the
``states``, which a 3.x function declares in code. 2.x routers, ingresses and egresses carry
protobuf-specific settings with no 3.x counterpart; they are reported, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

import yaml

from pystatefun.errors import ModuleError
from pystatefun.module._durations import parse_duration_ms
from pystatefun.module._source import FieldPath, SourceDocument, read_documents
from pystatefun.module.kinds import endpoints_v1_http

__all__ = ["Upgraded", "upgrade_module"]

_LEGACY_IO = {
    f"io.statefun.{system}/{role}": f"io.statefun.{system}.v1/{role}"
    for system in ("kafka", "kinesis")
    for role in ("ingress", "egress")
}
_MISSING = object()
_Output = list[tuple[list[str], dict[str, Any]]]  # (comment lines, document) in file order


@final
@dataclass(frozen=True, slots=True)
class Upgraded:
    """A converted module: ``yaml`` is the new file's text, ``notes`` what is left to do by
    hand, ``version`` the format it was converted from (``"1.0"``, ``"2.0"`` or ``"3.0"``)."""

    yaml: str
    notes: tuple[str, ...]
    version: str


def upgrade_module(path: Path | str) -> Upgraded:
    """Convert the legacy module file at ``path``; ``ModuleError`` when it is not one or
    cannot be converted (the error names the line)."""
    file = Path(path)
    documents = read_documents(file)
    legacy = [d for d in documents if isinstance(d.value, dict) and "version" in d.value]
    if not legacy:
        raise ModuleError(
            "not a legacy module (there is no top-level `version:`), so there is nothing to "
            "upgrade; check it with: pystatefun module validate FILE",
            file=file,
        )
    document = legacy[0]
    if len(documents) > 1:
        raise document.error((), "a legacy module is a single YAML document; split the file")
    version = document.value["version"]
    text = f"{float(version):.1f}" if isinstance(version, int | float) else str(version)
    notes: list[str] = []
    if text == "3.0":
        output = _from_v30(document, notes)
    elif text in {"1.0", "2.0"}:
        output = _from_v2x(document, notes)
    else:
        raise document.error(("version",), f"unknown format version {version!r}; "
                             "`module upgrade` converts versions 1.0, 2.0 and 3.0")  # fmt: skip
    header = f"Converted from the StateFun {text} module format by `pystatefun module upgrade`."
    return Upgraded(_render(header, output), tuple(notes), text)


def _render(header: str, output: _Output) -> str:
    if not output:
        return f"# {header}\n# The legacy module declared nothing that converts.\n"
    parts = []
    for index, (comments, document) in enumerate(output):
        lines = ([header] if index == 0 else []) + comments
        prefix = "".join(f"# {line}\n" for line in lines)
        parts.append(prefix + yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return "---\n".join(parts)


def _lookup(document: SourceDocument, path: FieldPath) -> object:
    value: object = document.value
    for part in path:
        if not isinstance(value, dict | list):
            return _MISSING
        try:
            value = value[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value


def _mapping(document: SourceDocument, path: FieldPath) -> dict[str, Any]:
    value = _lookup(document, path)
    if not isinstance(value, dict):
        what = "is missing" if value is _MISSING else f"must be a mapping, not {value!r:.40}"
        raise document.error(path, what)
    return value


def _items(document: SourceDocument, path: FieldPath) -> list[Any]:
    value = _lookup(document, path)
    if value is _MISSING or value is None:
        return []
    if not isinstance(value, list):
        raise document.error(path, f"must be a list, not {value!r:.40}")
    return value


def _check_remote(document: SourceDocument) -> None:
    kind = _lookup(document, ("module", "meta", "type"))
    if kind is _MISSING:
        raise document.error(("module", "meta", "type"), "missing; a legacy module says `remote`")
    if kind != "remote":
        raise document.error(
            ("module", "meta", "type"),
            f"{kind!r} is not `remote`: only remote modules are YAML; embedded modules are JVM "
            "code and have nothing to convert",
        )


def _from_v30(document: SourceDocument, notes: list[str]) -> _Output:
    _check_remote(document)
    output: _Output = []
    spec: FieldPath = ("module", "spec")
    for index, _ in enumerate(_items(document, (*spec, "endpoints"))):
        path = (*spec, "endpoints", index, "endpoint")
        kind = _lookup(document, (*path, "meta", "kind"))
        if kind != "http":
            raise document.error((*path, "meta", "kind"), f"{kind!r} is not `http`, the only "
                                 "3.0 endpoint kind")  # fmt: skip
        endpoint = dict(_mapping(document, (*path, "spec")))
        meta = _mapping(document, (*path, "meta"))
        # The 3.0 docs showed `functions` under meta and a `timeout` key; StateFun's code read
        # neither, so modules that followed the docs never worked. Move them where they belong.
        if "functions" not in endpoint and "functions" in meta:
            endpoint = {"functions": meta["functions"], **endpoint}
            notes.append(f"endpoint {meta['functions']}: moved `functions` from meta to spec")
        if "timeout" in endpoint and "timeouts" not in endpoint:
            endpoint["timeouts"] = {"call": endpoint.pop("timeout")}
            notes.append(f"endpoint {endpoint.get('functions')}: `timeout` became timeouts.call")
        output.append(([], {"kind": endpoints_v1_http.KIND, "spec": endpoint}))
    for section, role in (("ingresses", "ingress"), ("egresses", "egress")):
        for index, _ in enumerate(_items(document, (*spec, section))):
            output.append(_io_v30(document, (*spec, section, index, role)))
    return output


def _io_v30(document: SourceDocument, path: FieldPath) -> tuple[list[str], dict[str, Any]]:
    meta = _mapping(document, (*path, "meta"))
    kind = _LEGACY_IO.get(str(meta.get("type")))
    if kind is None:
        raise document.error(
            (*path, "meta", "type"),
            f"{meta.get('type')!r} is not a 3.0 I/O type that converts; known: "
            f"{', '.join(_LEGACY_IO)}",
        )
    io_id = meta.get("id")
    if not isinstance(io_id, str):
        raise document.error((*path, "meta", "id"), "a 3.0 ingress or egress needs its `id`")
    return [], {"kind": kind, "spec": {"id": io_id, **_mapping(document, (*path, "spec"))}}


def _from_v2x(document: SourceDocument, notes: list[str]) -> _Output:
    _check_remote(document)
    notes.append(
        "2.x functions speak the 2.x protocol: serve them with a 3.x SDK (pystatefun.sdk, or "
        "apache-flink-statefun 3.x) before running the converted module"
    )
    spec: FieldPath = ("module", "spec")
    output: _Output = []
    for index, _ in enumerate(_items(document, (*spec, "functions"))):
        converted = _function_v2x(document, (*spec, "functions", index, "function"), notes)
        if converted is not None:
            output.append(converted)
    for section, role in (("routers", "router"), ("ingresses", "ingress"), ("egresses", "egress")):
        for index, _ in enumerate(_items(document, (*spec, section))):
            line = document.location((*spec, section, index)).line
            notes.append(
                f"{document.file}:{line}: a 2.x {role} is not converted: its protobuf settings "
                "have no 3.x counterpart. Write an io.statefun.kafka.v1 or kinesis.v1 component "
                "by hand (docs/module-yaml/README.md)"
            )
    return output


def _function_v2x(
    document: SourceDocument, path: FieldPath, notes: list[str]
) -> tuple[list[str], dict[str, Any]] | None:
    meta = _mapping(document, (*path, "meta"))
    if meta.get("kind") != "http":
        line = document.location((*path, "meta", "kind")).line
        notes.append(
            f"{document.file}:{line}: a {meta.get('kind')!r} function is not converted: 3.x "
            "functions are served over HTTP only"
        )
        return None
    if not isinstance(meta.get("type"), str):
        raise document.error((*path, "meta", "type"), "the function's `<namespace>/<name>` "
                             "type is missing")  # fmt: skip
    spec = _mapping(document, (*path, "spec"))
    if "endpoint" not in spec:
        raise document.error((*path, "spec", "endpoint"), "required field is missing")
    converted: dict[str, Any] = {"functions": meta.get("type"), "urlPathTemplate": spec["endpoint"]}
    if "maxNumBatchRequests" in spec:
        converted["maxNumBatchRequests"] = spec["maxNumBatchRequests"]
    names = {"call": "timeout", "connect": "connectTimeout", "read": "readTimeout"}
    timeouts = {new: spec[old] for new, old in (names | {"write": "writeTimeout"}).items()
                if old in spec}  # fmt: skip
    if timeouts:
        converted["timeouts"] = timeouts
    comments = _state_comments(spec.get("states"))
    return comments, {"kind": endpoints_v1_http.KIND, "spec": converted}


def _state_comments(states: object) -> list[str]:
    """Comments that show how to declare the 2.x ``states`` with ``ValueSpec`` in a 3.x SDK."""
    if not isinstance(states, list) or not states:
        return []
    lines = ["`states` are now declared in the SDK, not in the module: bind the function with"]
    for state in states:
        name = state.get("name") if isinstance(state, dict) else state
        ttl = ""
        if isinstance(state, dict) and state.get("expireAfter") is not None:
            mode = state.get("expireMode", "after-invoke")
            argument = "expire_after_write" if mode == "after-write" else "expire_after_call"
            try:
                millis = f"timedelta(milliseconds={parse_duration_ms(state['expireAfter'])})"
            except ValueError:
                millis = repr(state["expireAfter"])
            ttl = f", {argument}={millis}"
        lines.append(f'  ValueSpec("{name}", <its Type>{ttl}),')
    return [*lines, "in the specs=[...] of @functions.bind(...)."]
