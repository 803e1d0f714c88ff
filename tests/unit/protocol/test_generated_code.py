"""The committed generated modules are exactly what ``scripts/generate_protocol.py`` produces
from ``proto/`` with the pinned protoc, and they match the upstream wire layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pystatefun.protocol import FromFunction, ToFunction

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "src" / "pystatefun" / "protocol" / "_generated"


def _generated_files(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*_pb2.py*"))}


def test_regeneration_changes_nothing(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, ROOT / "scripts" / "generate_protocol.py", "--out", tmp_path], check=True
    )
    fresh, committed = _generated_files(tmp_path), _generated_files(COMMITTED)
    assert sorted(fresh) == sorted(committed)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"regenerate with scripts/generate_protocol.py and commit: {stale}"


def test_field_numbers_match_upstream() -> None:
    """A few numbers a typo would break silently; the interop tests cover the rest on the wire."""
    delayed = FromFunction.DelayedInvocation.DESCRIPTOR.fields_by_name
    assert delayed["is_cancellation_request"].number == 10
    assert delayed["cancellation_token"].number == 11
    assert delayed["delay_in_ms"].number == 1
    assert ToFunction.DESCRIPTOR.fields_by_name["invocation"].number == 100
    response = FromFunction.DESCRIPTOR.fields_by_name
    assert response["invocation_result"].number == 100
    assert response["incomplete_invocation_context"].number == 101
    assert ToFunction.DESCRIPTOR.full_name == "io.statefun.sdk.reqreply.ToFunction"
