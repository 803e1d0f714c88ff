"""``pystatefun module``: check module YAML files, and convert older StateFun formats."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pystatefun.cli._errors import page_of
from pystatefun.errors import ModuleError

if TYPE_CHECKING:  # pydantic and PyYAML load only when a command runs: keeps --help fast
    from pystatefun.module import AwsRegion, EgressSpec, Endpoint, IngressSpec, Module, Transport

__all__ = ["describe", "module"]


def _seconds(value: float | None) -> str:
    if value is None:
        return "none"
    millis = round(value * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _describe_transport(transport: Transport) -> str:
    name = transport.kind.rpartition("/")[2]  # async or okhttp
    parts = [f"call {_seconds(transport.call_timeout_s)}"]
    parts.append(f"connect {_seconds(transport.connect_timeout_s)}")
    if transport.read_timeout_s is not None:
        parts.append(f"read {_seconds(transport.read_timeout_s)}")
    if transport.write_timeout_s is not None:
        parts.append(f"write {_seconds(transport.write_timeout_s)}")
    if transport.trust_cacerts or transport.client_cert:
        parts.append("tls")
    return f"{name} transport: {', '.join(parts)}"


def _describe_endpoint(endpoint: Endpoint) -> str:
    batch = endpoint.max_num_batch_requests
    limit = f"batches of up to {batch}" if batch > 0 else "unbounded batches"
    from pystatefun.module import (  # noqa: PLC0415 - only when a command runs
        ColocatedEndpoint,
        EmbeddedEndpoint,
    )

    if isinstance(endpoint, EmbeddedEndpoint):
        runs = "event loop" if endpoint.execution == "loop" else f"{endpoint.threads} threads"
        return (
            f"embedded endpoint {endpoint.functions} -> {endpoint.import_path} "
            f"(plain functions on the {runs}; {limit})"
        )
    if isinstance(endpoint, ColocatedEndpoint):
        over = "a unix socket" if endpoint.listen == ColocatedEndpoint.UNIX else "127.0.0.1"
        return (
            f"co-located endpoint {endpoint.functions} -> `{shlex.join(endpoint.command)}` "
            f"(over {over} at {endpoint.path}; {_describe_transport(endpoint.transport)}; "
            f"{limit})"
        )
    return (
        f"endpoint {endpoint.functions} -> {endpoint.url_path_template} "
        f"({_describe_transport(endpoint.transport)}; {limit})"
    )


def _describe_connector(spec: IngressSpec | EgressSpec) -> str:
    from pystatefun.module import (  # noqa: PLC0415
        KafkaIngress,
        KinesisEgress,
        KinesisIngress,
        PlaygroundEgress,
        PlaygroundIngress,
    )

    if isinstance(spec, PlaygroundIngress):
        return f"playground ingress on port {spec.port}"
    if isinstance(spec, PlaygroundEgress):
        return f"playground egress on port {spec.port}, topics {', '.join(spec.topics)}"
    if isinstance(spec, KafkaIngress):
        topics = "; ".join(f"{t.topic} -> {', '.join(t.targets)}" for t in spec.topics)
        return (
            f"kafka ingress {spec.id} from {spec.bootstrap_servers}, group "
            f"{spec.consumer_group_id}, starting at {spec.startup_position}: {topics}"
        )
    if isinstance(spec, KinesisIngress):
        streams = "; ".join(f"{s.stream} -> {', '.join(s.targets)}" for s in spec.streams)
        return (
            f"kinesis ingress {spec.id} in {_aws_region(spec.region)}, starting at "
            f"{spec.startup_position}: {streams}"
        )
    if isinstance(spec, KinesisEgress):
        return f"kinesis egress {spec.id} to {_aws_region(spec.region)}"
    return f"kafka egress {spec.id} to {spec.bootstrap_servers} ({spec.delivery_semantic})"


def _aws_region(region: AwsRegion) -> str:
    if region.type == "custom-endpoint":
        return f"{region.id} at {region.endpoint}"
    return region.id or "the default region"


def describe(module: Module, name: str) -> list[str]:
    """One line per component, in file order, each starting with ``name:line:``."""
    entries = [(e.location.line, _describe_endpoint(e)) for e in module.endpoints]
    entries += [(i.location.line, _describe_connector(i)) for i in module.ingresses]
    entries += [(e.location.line, _describe_connector(e)) for e in module.egresses]
    return [f"{name}:{line}: {text}" for line, text in sorted(entries)]


@click.group("module")
def module() -> None:
    """Check module YAML files, and convert older StateFun module formats."""


@module.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (unknown fields, ...).")
def validate(file: Path, strict: bool) -> None:
    """Load and validate the module FILE.

    Prints one line per component on stdout and exits 0. If the module is invalid, prints
    every problem in it, one per line (file:line: field: what is wrong and how to fix it), on
    stderr and exits 1. Warnings, such as unknown fields, go to stderr.
    """
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    from pystatefun.module import load_module  # noqa: PLC0415

    try:
        loaded = load_module(file)
    except ModuleError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(f"What it means and what to do: {page_of(error.code)}", err=True)
        sys.exit(1)
    for line in describe(loaded, str(file)):
        click.echo(line)
    if strict and loaded.warnings:
        click.echo(f"error: {len(loaded.warnings)} warning(s) and --strict", err=True)
        sys.exit(1)


@module.command()
@click.argument("file", type=click.Path(path_type=Path))
def upgrade(file: Path) -> None:
    """Convert the StateFun 2.x or 3.0 module FILE to the current kind/spec format.

    Writes the converted YAML on stdout (redirect it to a new file) and notes on what is left
    to do by hand on stderr. Exits 1, with the error on stderr, if FILE cannot be converted.
    """
    from pystatefun.module.upgrade import upgrade_module  # noqa: PLC0415

    try:
        upgraded = upgrade_module(file)
    except ModuleError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(f"What it means and what to do: {page_of(error.code)}", err=True)
        sys.exit(1)
    click.echo(upgraded.yaml, nl=False)
    for note in upgraded.notes:
        click.echo(f"note: {note}", err=True)
