"""Module YAML files for tests: endpoints, and the playground ingress and egress on free ports."""

from __future__ import annotations

from pathlib import Path


def write_module(
    path: Path,
    endpoints: dict[str, str],
    topics: tuple[str, ...] = ("out",),
    transport: str = "call: 2s",
    max_batch: int | None = None,
) -> Path:
    """A module: ``endpoints`` maps a ``functions`` pattern to its URL; playground I/O on port 0."""
    batch = f"  maxNumBatchRequests: {max_batch}\n" if max_batch is not None else ""
    documents = [
        f"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: {pattern}\n"
        f"  urlPathTemplate: {url}\n{batch}  transport:\n    {transport}\n"
        for pattern, url in endpoints.items()
    ]
    documents.append("kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n")
    listed = ", ".join(topics)
    documents.append(
        f"kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [{listed}]\n"
    )
    path.write_text("---\n".join(documents))
    return path
