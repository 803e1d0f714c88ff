"""Module YAML files for tests: endpoints, and the playground ingress and egress on free ports."""

from __future__ import annotations

from pathlib import Path

from pystatefun.errors import ModuleError


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


def assert_problems(error: ModuleError, expected: list[tuple[int, str, str]]) -> None:
    """``error`` has exactly the problems ``expected``, in order: (line, field, a prefix or a
    part of the reason) each."""
    found = [(p.line, p.field, p.reason) for p in error.problems]
    assert len(found) == len(expected), found
    for (line, field, reason), (want_line, want_field, says) in zip(found, expected, strict=True):
        assert (line, field) == (want_line, want_field), found
        assert reason.startswith(says) or says in reason, reason


def run_refused(module: Path, data_dir: Path) -> str:
    """What ``pystatefun run`` says when it refuses ``module``: it exits 1 and creates no data
    dir."""
    from click.testing import CliRunner

    from pystatefun.cli import cli

    result = CliRunner().invoke(cli, ["run", str(module), "--data-dir", str(data_dir)])
    assert result.exit_code == 1, result.output
    assert not data_dir.exists()
    return result.output
