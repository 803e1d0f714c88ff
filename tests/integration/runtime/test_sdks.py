"""``pystatefun run`` drives functions served by each SDK: ours, the official Python SDK and
the official JavaScript SDK, all real processes on 127.0.0.1, with the same smoke functions."""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

import pytest
from support.function_servers import FIXTURES, SDKS, endpoint
from support.runtime_process import start_runtime, write_module
from support.smoke_client import await_records, drain, send, verify_states
from support.smoke_model import SmokeModel


@pytest.mark.interop
@pytest.mark.parametrize("sdk", SDKS)
def test_cascades_delays_and_replies_on_every_sdk(
    sdk: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(FIXTURES[sdk])
    module = write_module(tmp_path / "module.yaml", endpoint(server))
    runtime = start_runtime(module, tmp_path / "data", "--durability", "os")
    try:
        rng = random.Random(7)
        model = SmokeModel(instances=6)
        for index in range(40):
            target, commands = model.source(rng)
            send(runtime, target, commands, key=f"{sdk}-{index}")
        verify_states(runtime, {str(i): model.expected.get(str(i), 0) for i in range(6)}, 7)
        reply = urllib.request.Request(
            f"{runtime.ingress}/smoke/command-interpreter/0",
            data=json.dumps({"commands": [{"reply": {"text": f"hello from {sdk}"}}]}).encode(),
            headers={
                "Content-Type": "application/vnd.smoke/Commands",
                "Pystatefun-Request-Reply": "true",
            },
            method="POST",
        )
        with urllib.request.urlopen(reply, timeout=30) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "application/vnd.io.statefun.types/string"
            assert answer.read().decode() == f"hello from {sdk}"
        echo = urllib.request.Request(f"{runtime.ingress}/smoke/echo/e", data=b"ping", method="PUT")
        with urllib.request.urlopen(echo, timeout=30) as accepted:
            assert accepted.status == 202
        assert runtime.terminate() == 0
        restarted = start_runtime(module, tmp_path / "data", "--durability", "os")
        # Accepted before the graceful stop, so processed before or after it, exactly once.
        assert await_records(restarted, "echo", 1) == ["ping"]
        assert drain(restarted, "echo") == []
        assert restarted.terminate() == 0
    finally:
        runtime.kill()
