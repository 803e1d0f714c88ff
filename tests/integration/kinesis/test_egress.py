"""The Kinesis egress against a local Kinesis-compatible server (moto's server mode: Kinesis
itself cannot run here): what functions send is put to its stream with its partition key (and
its explicit hash key, when it has one), nothing is lost across a restart or while Kinesis is
down, and a record Kinesis can never take is dead-lettered with its address.

Records come in through the Kinesis ingress (``<key>``: ``v<n>``) and an embedded function sends
``<key>:<value>:<count>`` to the egress, partitioned by ``<key>``, where ``count`` is the
address's state: a lost record shows as a gap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from support.inprocess import readings, running, wait_for
from support.kinesis import REGION, MotoServer, client, free_port, put, read_all, stream

from pystatefun.io import kinesis_egress
from pystatefun.runtime import Runtime
from pystatefun.store import DataDir

EGRESS = "com.example/greets"
FUNCTIONS = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kinesis_egress_message
from pystatefun.sdk import egress_message_builder, StringType

functions = StatefulFunctions()


@functions.bind("kinesis/greeter", specs=[ValueSpec("count", IntType)])
def greeter(context, message):
    value = message.raw_value().decode()
    if value.startswith("bad-"):  # bad-type, bad-size, bad-key: records Kinesis never takes
        send_bad(context, value)
        return
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{value}:{context.storage.count}"
    hash_key = value.partition("#")[2] or None  # v<n>#<explicit hash key>
    context.send_egress(kinesis_egress_message(
        "com.example/greets", "OUT", line, context.address.id, explicit_hash_key=hash_key
    ))


def send_bad(context, value):
    if value == "bad-type":
        context.send_egress(egress_message_builder("com.example/greets", "hi", StringType))
    elif value == "bad-key":
        context.send_egress(kinesis_egress_message("com.example/greets", "OUT", "v", ""))
    else:
        big = b"x" * (1024 * 1024)
        context.send_egress(kinesis_egress_message("com.example/greets", "OUT", big, "k"))
"""


def _module(
    tmp_path: Path, *, source: tuple[str, str], out: tuple[str, str], egress_extra: str = ""
) -> Path:
    """``source`` and ``out``: (endpoint, stream) of the ingress and of the egress."""
    name = f"greeter_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FUNCTIONS.replace('"OUT"', repr(out[1])))

    def aws(endpoint: str) -> str:
        return (
            f"  awsRegion:\n    type: custom-endpoint\n    endpoint: {endpoint}\n"
            f"    id: {REGION}\n  awsCredentials:\n    type: basic\n"
            "    accessKeyId: testing\n    secretAccessKey: testing\n"
        )

    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kinesis/*\n"
        f"  import: {name}.py:functions\n---\n"
        f"kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: com.example/names\n{aws(source[0])}"
        "  startupPosition:\n    type: earliest\n  streams:\n"
        f"    - stream: {source[1]}\n      valueType: com.example/text\n"
        "      targets: [kinesis/greeter]\n---\n"
        f"kind: io.statefun.kinesis.v1/egress\nspec:\n  id: {EGRESS}\n{aws(out[0])}"
        f"  maxOutstandingRecords: 100\n{egress_extra}"
    )
    return module


def _rows(count: int, keys: int, start: int = 0) -> list[tuple[str, bytes]]:
    return [(f"k{n % keys}", f"v{n}".encode()) for n in range(start, start + count)]


def _expected(rows: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    """Per key, the lines the greeter sends for ``rows``, in order."""
    lines: dict[str, list[str]] = {}
    for key, value in rows:
        mine = lines.setdefault(key, [])
        mine.append(f"{key}:{value.decode()}:{len(mine) + 1}")
    return lines


def _by_key(found: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The records' data per partition key (a key's records share one shard: in order), each
    checked to be partitioned by its address id."""
    lines: dict[str, list[str]] = {}
    for record in found:
        line = record["Data"].decode()
        assert record["PartitionKey"] == line.split(":")[0]
        lines.setdefault(record["PartitionKey"], []).append(line)
    return lines


async def _waiting(runtime: Runtime) -> int:
    """Committed egress records not published yet."""
    return (await runtime.engine.counts(("egress",)))["egress"]


async def _published(runtime: Runtime, server: MotoServer, out: str, count: int) -> list[Any]:
    """Every record of ``out`` once the functions ran everything, ``count`` records arrived
    and the egress table is empty: all there is."""

    async def done() -> bool:
        return runtime.statistics()["pending_messages"] == 0 and await _waiting(runtime) == 0

    await wait_for(lambda: len(read_all(server, out)) >= count)
    await wait_for(done)
    return read_all(server, out)


async def test_records_are_put_partitioned_by_address_in_order(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    source, out = stream(kinesis_server, 2, "names"), stream(kinesis_server, 3, "greets")
    rows = _rows(300, keys=9)
    put(kinesis_server, source, rows)
    endpoint = kinesis_server.endpoint
    module = _module(tmp_path, source=(endpoint, source), out=(endpoint, out))
    async with running(module, tmp_path / "data") as runtime:
        found = await _published(runtime, kinesis_server, out, 300)
        tally = await readings(runtime, "egress_records*")
    assert _by_key(found) == _expected(rows)  # nothing crashed: each record once, in order
    assert tally == {"egress_records_published_total": 300}  # the metrics say the same
    assert len({r["ShardId"] for r in found}) == 3  # spread by partition key


async def test_an_explicit_hash_key_picks_the_shard(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    """The same partition key, three records: two with an explicit hash key, at the start of
    the hash range (shard 0) and past its middle (shard 1), one without (its partition key's
    MD5 decides). (moto treats a shard's ending hash key as outside it, so the test keeps off
    the very top of the range.)"""
    source, out = stream(kinesis_server, 1, "names"), stream(kinesis_server, 2, "greets")
    top = 2**127 + 12345
    rows = [("k", b"v0#0"), ("k", f"v1#{top}".encode()), ("k", b"v2")]
    put(kinesis_server, source, rows)
    endpoint = kinesis_server.endpoint
    module = _module(tmp_path, source=(endpoint, source), out=(endpoint, out))
    async with running(module, tmp_path / "data") as runtime:
        found = await _published(runtime, kinesis_server, out, 3)
    shards = sorted(
        s["ShardId"] for s in client(kinesis_server).list_shards(StreamName=out)["Shards"]
    )
    placed = {r["Data"].decode(): r["ShardId"] for r in found}
    assert placed["k:v0#0:1"] == shards[0]
    assert placed[f"k:v1#{top}:2"] == shards[1]
    assert "k:v2:3" in placed


async def test_a_restart_loses_nothing(kinesis_server: MotoServer, tmp_path: Path) -> None:
    source, out = stream(kinesis_server, 2, "names"), stream(kinesis_server, 2, "greets")
    first, second = _rows(120, keys=5), _rows(80, keys=5, start=120)
    endpoint = kinesis_server.endpoint
    module = _module(tmp_path, source=(endpoint, source), out=(endpoint, out))
    put(kinesis_server, source, first)
    async with running(module, tmp_path / "data") as runtime:
        await _published(runtime, kinesis_server, out, 120)
    put(kinesis_server, source, second)
    async with running(module, tmp_path / "data") as runtime:
        found = await _published(runtime, kinesis_server, out, 200)
    assert _by_key(found) == _expected(first + second)


async def test_records_wait_while_kinesis_is_down_and_are_put_once_it_is_up(
    kinesis_server: MotoServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The egress's Kinesis is down when the runtime starts (nothing listens on its port),
    then comes up without the stream, then gets it: the records wait in the data dir all along,
    and all of them arrive."""
    monkeypatch.setattr(kinesis_egress, "_BACKOFF_MAX_S", 0.5)
    monkeypatch.setattr(kinesis_egress, "_ERROR_LOG_S", 0.0)  # every failure, not one per 10 s
    source = stream(kinesis_server, 1, "names")
    rows = _rows(40, keys=4)
    put(kinesis_server, source, rows)
    down = MotoServer(tmp_path, free_port())
    # No retries within botocore's call, so that its backoff does not add to the egress's.
    settings = "  clientConfigProperties:\n    - MaxErrorRetry: 0\n    - ConnectTimeout: 1000\n"
    module = _module(
        tmp_path, source=(kinesis_server.endpoint, source), out=(down.endpoint, "out"),
        egress_extra=settings,
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, "pystatefun.io.kinesis"):
        async with running(module, tmp_path / "data") as runtime:
            await wait_for(lambda: "not taken" in caplog.text)
            assert await _waiting(runtime) == 40  # waiting, not lost
            down.start()
            try:
                await wait_for(lambda: "stream out does not exist; create it" in caplog.text)
                assert await _waiting(runtime) == 40
                stream(down, 2, name="out")
                found = await _published(runtime, down, "out", 40)
            finally:
                down.stop()
    assert _by_key(found) == _expected(rows)
    assert f"kinesis egress {EGRESS}: 40 record(s) not taken" in caplog.text
    assert "they wait in the store, and are sent again" in caplog.text


async def test_a_record_kinesis_can_never_take_is_dead_lettered_with_its_address(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    source, out = stream(kinesis_server, 1, "names"), stream(kinesis_server, 1, "greets")
    rows = [("a", b"v0"), ("b", b"bad-type"), ("c", b"bad-size"), ("d", b"bad-key"),
            ("a", b"v1")]  # fmt: skip
    put(kinesis_server, source, rows)
    endpoint = kinesis_server.endpoint
    module = _module(tmp_path, source=(endpoint, source), out=(endpoint, out))
    async with running(module, tmp_path / "data") as runtime:
        found = await _published(runtime, kinesis_server, out, 2)
        await wait_for(lambda: len(DataDir(tmp_path / "data").dead_letters()) == 3)
    letters = {d.target.id: d.error for d in DataDir(tmp_path / "data").dead_letters()}
    assert [r["Data"] for r in found] == [b"a:v0:1", b"a:v1:2"]
    assert (
        f"sent a 'io.statefun.types/string' to Kinesis egress {EGRESS}, which takes only "
        "'type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord'" in letters["b"]
    )
    assert (
        f"sent a 1048577-byte record for stream {out}, over Kinesis's limit of 1048576 bytes"
        in letters["c"]
    )
    assert f"sent a Kinesis record for stream {out} without a partition key" in letters["d"]
    assert set(letters) == {"b", "c", "d"}
