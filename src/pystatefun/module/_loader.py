"""``load_module``: a module file, as a validated ``Module`` or a ``ModuleError`` at a line.

A module is StateFun 3.1+'s stream of component documents::

    kind: io.statefun.endpoints.v2/http     # which parser reads the spec
    spec: {functions: com.example/*, urlPathTemplate: "http://functions:8000/{function.name}"}
    ---
    kind: io.statefun.playground.v1/ingress
    spec: {port: 8090}

Each document is validated by the parser of its ``kind`` (``kinds/``); then the module as a
whole is checked (each ``functions`` pattern once, at most one playground ingress and egress).
A bad document does not stop the others from being checked: the error lists every problem of
the file. Older formats, recognised by their top-level ``version:``, are rejected with the
command that converts them.
"""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path

from pystatefun.errors import ModuleError
from pystatefun.module._components import (
    EGRESS_TYPES,
    ENDPOINT_TYPES,
    INGRESS_TYPES,
    KafkaEgress,
    KafkaIngress,
    KinesisEgress,
    KinesisIngress,
    Module,
    PlaygroundEgress,
)
from pystatefun.module._source import SourceDocument, read_documents
from pystatefun.module._validation import Problems
from pystatefun.module.kinds import NOT_YET_SUPPORTED, PARSERS, Component

__all__ = ["legacy_version", "load_module", "upgrade_command"]

_DOCS = "docs/module-yaml/README.md"
_SHAPE = "every document is `kind: <component type>` plus `spec: {...}`"


def load_module(path: Path | str) -> Module:
    """Load and validate the module file at ``path``.

    Raises ``pystatefun.errors.ModuleError`` (a ``ValueError``) whose ``problems`` name the
    file, line and field of everything wrong in it. Unknown fields are ignored, as StateFun
    does, but each is logged as a warning on the ``pystatefun.module`` logger and kept in
    ``Module.warnings``.
    """
    file = Path(path)
    documents = read_documents(file)
    if not documents:
        raise ModuleError(
            f"the file has no documents; a module is a stream of YAML documents separated by "
            f"`---`, and {_SHAPE} (see {_DOCS})",
            file=file,
        )
    problems = Problems()
    parsed: list[SourceDocument] = []
    components: list[Component] = []
    for document in documents:
        component = problems.attempt(partial(_component, document))
        if component is not None:
            parsed.append(document)
            components.append(component)
    _check_unique(parsed, components, problems)
    problems.raise_any()
    return Module(
        source=file.resolve(),
        endpoints=tuple(c for c in components if isinstance(c, ENDPOINT_TYPES)),
        ingresses=tuple(c for c in components if isinstance(c, INGRESS_TYPES)),
        egresses=tuple(c for c in components if isinstance(c, EGRESS_TYPES)),
        warnings=tuple(documents[0].warnings),
    )


def _component(document: SourceDocument) -> Component:
    value = document.value
    if not isinstance(value, dict):
        raise document.error((), f"a document must be a mapping: {_SHAPE}; got {value!r:.60}")
    if "version" in value:
        raise legacy_version(document)
    kind = value.get("kind")
    if kind is None:
        hint = " (a `module:` document without `version:`?)" if "module" in value else ""
        raise document.error((), f"no `kind`{hint}: {_SHAPE}")
    parser = PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise document.error(("kind",), _unknown_kind(kind))
    if "spec" not in value:
        raise document.error((), f"no `spec` for {kind}: {_SHAPE} (see {_DOCS})")
    for key in value:
        if key not in {"kind", "spec"}:
            document.warn((str(key),), "unknown field, ignored (as StateFun does); a document "
                          "has only `kind` and `spec`")  # fmt: skip
    return parser(document)


def _unknown_kind(kind: object) -> str:
    if isinstance(kind, str) and kind in NOT_YET_SUPPORTED:
        return (
            f"{kind} is a StateFun kind that pystatefun does not support yet; for local "
            "development use io.statefun.playground.v1/ingress and "
            "io.statefun.playground.v1/egress (see docs/compatibility.md)"
        )
    known = ", ".join(PARSERS)
    return f"unknown kind {kind!r:.80}; the known kinds are {known} (see {_DOCS})"


def upgrade_command(file: Path) -> str:
    """The shell command that converts ``file`` to the current format."""
    target = file.with_name(f"{file.stem}-upgraded.yaml")
    return f"pystatefun module upgrade {shlex.quote(str(file))} > {shlex.quote(str(target))}"


def legacy_version(document: SourceDocument) -> ModuleError:
    """The error for a StateFun 2.x or 3.0 module document, saying how to move on."""
    version = document.value["version"]
    text = f"{float(version):.1f}" if isinstance(version, int | float) else str(version)
    command = upgrade_command(document.file)
    if text == "3.0":
        return document.error(
            ("version",),
            'this is the legacy StateFun 3.0 module format (one `version: "3.0"` document); '
            f"pystatefun reads the 3.1+ format of `kind`/`spec` documents. Convert it: {command}",
        )
    if text in {"1.0", "2.0"}:
        return document.error(
            ("version",),
            f"this is a StateFun 2.x module (format {text}): its functions use the 2.x "
            "protocol, which pystatefun does not support. Move the functions to a 3.x SDK "
            "(pystatefun.sdk, or apache-flink-statefun 3.x; state is then declared with "
            f"ValueSpec in code), then convert the endpoints: {command}",
        )
    return document.error(
        ("version",),
        f"unknown module format version {version!r}; pystatefun reads the StateFun 3.1+ format, "
        f"where {_SHAPE} and there is no `version:` (see {_DOCS})",
    )


def _check_unique(
    documents: list[SourceDocument], components: list[Component], problems: Problems
) -> None:
    """Each ``functions`` pattern once; at most one playground ingress and one egress; each
    ingress and egress id once. Only the documents that parsed take part: a broken one has no
    component to compare."""
    first_of: dict[object, int] = {}
    for index, component in enumerate(components):
        document = documents[index]
        if isinstance(component, ENDPOINT_TYPES):
            key: object = component.functions
            path: tuple[str, ...] = ("spec", "functions")
        elif isinstance(component, KafkaIngress | KafkaEgress | KinesisIngress | KinesisEgress):
            role = "ingress" if isinstance(component, KafkaIngress | KinesisIngress) else "egress"
            key, path = (role, component.id), ("spec", "id")
        else:
            key, path = type(component), ("kind",)
        if key not in first_of:
            first_of[key] = index
            continue
        first = documents[first_of[key]]
        line = first.location(path).line
        if isinstance(component, ENDPOINT_TYPES):
            problems.add(
                document.problem(
                    path,
                    f"{key!r} is already served by the endpoint at line {line}; declare each "
                    "functions pattern once (merge the two, or name a type exactly in one of them)",
                )
            )
            continue
        if isinstance(key, tuple):
            problems.add(
                document.problem(
                    path,
                    f"{key[0]} id {key[1]!r} is already declared at line {line}; give each "
                    f"{key[0]} its own id",
                )
            )
            continue
        fix = (
            "list every topic in one egress"
            if isinstance(component, PlaygroundEgress)
            else "one ingress accepts messages for every function"
        )
        problems.add(
            document.problem(
                path,
                f"a second {document.value['kind']} (the first is at line {line}); a module has "
                f"at most one playground ingress and one playground egress: {fix}",
            )
        )
