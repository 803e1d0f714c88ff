"""A disk that fills up under load, and then has room again: the runtime refuses new messages
with 503 and ``Retry-After`` meanwhile, says so on ``/ready`` and ``/metrics``, and goes on by
itself once a write succeeds, with every message applied exactly once and no restart.

The disk is real: a small tmpfs the test mounts (it needs root, as CI has; the test says so
when it is not), filled with a ballast file to a few hundred KiB of room, under a real
``pystatefun run`` with ``fsync`` durability and the embedded counter module. A read
transaction stays open meanwhile (a long ``pystatefun sql`` query, say): SQLite cannot start
its write-ahead log over while a reader may need it, so the log must grow, and the disk stays
full until the test frees it (without the reader, a log that starts over writes on in the
room it already has, and the disk may seem full only for an instant).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.cluster_counter import answered, counted, counter_module, popped
from support.runtime_process import PYSTATEFUN, RuntimeProcess, start_runtime

from pystatefun.store import DataDir

MESSAGES = 240
IDS = 6
BODY = b"x" * 20_000  # 20 KB a message: the disk fills within a few dozen


@contextmanager
def _tmpfs(path: Path, size_mib: int) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI runs as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
                   check=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def _send(worker: RuntimeProcess, n: int) -> tuple[int, str, str | None]:
    """Message ``n`` (with an idempotency key): status, body and ``Retry-After``."""
    return counted(worker, f"u{n % IDS}", key=f"m{n}", body=BODY, timeout_s=120)


def _fill(path: Path) -> None:
    """Write ``path`` until the file system has no room left."""
    with path.open("wb", buffering=0) as ballast, contextlib.suppress(OSError):  # ENOSPC
        while True:
            ballast.write(b"\0" * 4096)
    assert os.statvfs(path.parent).f_bavail == 0


def _get(url: str) -> tuple[int, str]:
    status, body, _ = answered(url, timeout_s=30)
    return status, body


def _until(check: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Poll the runtime's own status ``check`` until true, within a deadline."""
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_full_disk_refuses_with_503_then_the_runtime_resumes_by_itself_losing_nothing(
    tmp_path: Path,
) -> None:
    with _tmpfs(tmp_path / "disk", 24) as disk:
        worker = start_runtime(counter_module(tmp_path), disk / "data", "--admin-port", "0",
                               log_dir=tmp_path)  # fmt: skip
        try:
            reader = DataDir(disk / "data").snapshot_connection()
            reader.execute("SELECT COUNT(*) FROM state").fetchone()
            room = os.statvfs(disk)
            ballast = disk / "ballast"
            ballast.write_bytes(b"\0" * (room.f_bavail * room.f_frsize - 300 * 1024))
            statuses: dict[int, tuple[int, str, str | None]] = {}

            def sender(first: int) -> None:
                for n in range(first, MESSAGES - 1, 8):
                    try:
                        statuses[n] = _send(worker, n)
                    except OSError as exc:  # reported below, with the other statuses
                        statuses[n] = (-1, repr(exc), None)

            senders = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(8)]
            for thread in senders:
                thread.start()
            # The senders may all be waiting on writes the store holds: ask /ready.
            _until(lambda: _get(f"{worker.admin}/ready")[0] == 503, "the disk to fill", 120)
            _fill(disk / "brim")  # the last few KiB too: no write of any size fits now
            status, said = _get(f"{worker.admin}/ready")
            assert status == 503
            assert said.startswith(f"degraded: the data dir {disk / 'data'} cannot be written")
            assert "the disk is full" in said
            statuses[MESSAGES - 1] = _send(worker, MESSAGES - 1)  # refused at once
            assert statuses[MESSAGES - 1][0] == 503
            assert "pystatefun_store_unwritable 1.0" in _get(f"{worker.admin}/metrics")[1]
            ballast.unlink()  # room again: no restart, no signal
            (disk / "brim").unlink()
            reader.close()
            _until(lambda: _get(f"{worker.admin}/ready")[0] == 200, "/ready to answer 200")
            for thread in senders:
                thread.join(180)
            refusals = [s for s in statuses.values() if s[0] == 503]
            assert refusals
            for _, body, retry_after in refusals:
                assert retry_after == "2"
                assert "was not stored" in body
                assert "the disk is full" in body
            assert {s[0] for s in statuses.values()} <= {202, 503}, statuses
            for n, (status, _, _) in sorted(statuses.items()):  # the refused ones, again
                if status == 503:
                    assert _send(worker, n)[0] == 202
            records = popped(worker, MESSAGES, deadline_s=60)
            assert _get(f"{worker.egress}/out")[0] == 404  # and nothing more
            metrics = _get(f"{worker.admin}/metrics")[1]
        finally:
            worker.terminate()
    # Every message applied exactly once: each counter saw 1..k, each count reported once.
    assert len(records) == MESSAGES
    seen = Counter(records)
    expected = Counter(f"u{i}:{c}" for i in range(IDS) for c in range(1, MESSAGES // IDS + 1))
    assert seen == expected
    assert "pystatefun_store_unwritable 0.0" in metrics
    refusals_line = next(line for line in metrics.splitlines()
                         if line.startswith("pystatefun_store_write_refusals_total "))  # fmt: skip
    assert float(refusals_line.split()[1]) >= 1


def _pystatefun(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYSTATEFUN, *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_a_savepoint_onto_a_full_disk_fails_whole_with_the_cause_leaving_no_file(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,n\n" + "".join(f"k{i},{i}\n" for i in range(20_000)))
    data_dir = tmp_path / "data"
    loaded = _pystatefun("bootstrap", rows, "--type", "t/c", "--id-column", "id",
                         "--state", "n=n:int", "--data-dir", data_dir)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    with _tmpfs(tmp_path / "small", 1) as small:
        ballast = small / "ballast"
        _fill(ballast)
        ballast.write_bytes(b"\0" * (ballast.stat().st_size - 64 * 1024))  # 64 KiB of room
        failed = _pystatefun("savepoint", "create", small / "sp.jsonl", "--data-dir", data_dir)
        assert failed.returncode == 1
        assert f"cannot write {small / 'sp.jsonl'}" in failed.stderr
        assert "No space left on device" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert list(small.iterdir()) == [ballast]  # no savepoint, and no partial one either


def test_reads_of_a_stopped_data_dir_on_a_full_disk_work(tmp_path: Path) -> None:
    """``state``, ``sql`` and ``savepoint create`` read a data dir whose disk is full (SQLite
    cannot make its -shm file there: a data dir nothing writes is read without one)."""
    rows = tmp_path / "rows.csv"
    rows.write_text("id,n\n" + "".join(f"k{i},{i}\n" for i in range(20_000)))
    with _tmpfs(tmp_path / "disk", 4) as disk:
        data_dir = disk / "data"
        loaded = _pystatefun("bootstrap", rows, "--type", "t/c", "--id-column", "id",
                             "--state", "n=n:int", "--data-dir", data_dir)  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        _fill(disk / "ballast")
        got = _pystatefun("state", "get", "t/c", "k42", "--data-dir", data_dir)
        assert (got.returncode, "42" in got.stdout) == (0, True), got.stderr
        summed = _pystatefun("sql", 'SELECT SUM(value) AS s FROM "t/c.n"', "--data-dir",
                             data_dir, "--format", "csv")  # fmt: skip
        assert (summed.returncode, summed.stdout.split()) == (0, ["s", str(sum(range(20_000)))])
        kept = _pystatefun("savepoint", "create", tmp_path / "sp.jsonl", "--data-dir", data_dir)
        assert kept.returncode == 0, kept.stderr
        assert "20,000 state" in kept.stdout + kept.stderr
