"""An ``fsync`` that fails under a running runtime: the write it covered is never called
durable, its clients are told the outcome is unknown (not "nothing was added"), the runtime
stops with the reason, and a restart reads what the disk holds, every acknowledged message
applied exactly once.

How the failure is injected: a shared library built here with the machine's ``gcc`` and
loaded into ``pystatefun run`` with ``LD_PRELOAD`` replaces the C library's ``fsync`` and
``fdatasync`` (which SQLite calls to make a commit durable): while the file the test names
in ``PYSTATEFUN_TEST_FAIL_FSYNC`` exists, they fail with ``EIO``, as a dying disk makes them.
The writes themselves go through, into the page cache, which is how an ``fsync`` failure
leaves the outcome unknown. The runtime, its SQLite data dir and the functions are real.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support.cluster_counter import answered, counted, counter_module, popped
from support.runtime_process import RuntimeProcess, start_runtime

_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *trigger = getenv("PYSTATEFUN_TEST_FAIL_FSYNC");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) { errno = EIO; return -1; }
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) { errno = EIO; return -1; }
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
"""


def _shim(tmp_path: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("this test builds an LD_PRELOAD library and needs gcc")
    source, library = tmp_path / "failfsync.c", tmp_path / "libfailfsync.so"
    source.write_text(_SHIM)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"],
                   check=True, capture_output=True)  # fmt: skip
    return library


def _send(worker: RuntimeProcess, n: int) -> tuple[int, str]:
    status, body, _ = counted(worker, f"u{n % 3}", key=f"m{n}")
    return status, body


def test_a_failed_fsync_is_never_acknowledged_and_a_restart_reads_what_the_disk_holds(
    tmp_path: Path,
) -> None:
    trigger = tmp_path / "fail-fsync-now"
    env = {"LD_PRELOAD": str(_shim(tmp_path)), "PYSTATEFUN_TEST_FAIL_FSYNC": str(trigger)}
    module, data_dir = counter_module(tmp_path), tmp_path / "data"
    worker = start_runtime(module, data_dir, env=env)
    try:
        assert [_send(worker, n)[0] for n in range(9)] == [202] * 9
        assert len(popped(worker, 9)) == 9  # all of it durable before the disk fails
        trigger.touch()
        status, said = _send(worker, 9)
        assert status == 504, said
        assert "may or may not have been stored" in said
        assert "fsync" in said
        assert worker.process.wait(60) == 1  # it stops by itself, with the reason
    finally:
        worker.kill()
    assert "an fsync of" in worker.log_text()
    trigger.unlink()
    restarted = start_runtime(module, data_dir)
    try:
        again = _send(restarted, 9)  # its Idempotency-Key tells whether it was stored
        assert again[0] in (200, 202), again
        records = popped(restarted, 1, deadline_s=30)
        nothing, _, _ = answered(f"{restarted.egress}/out")
    finally:
        restarted.terminate()
    # The nine acknowledged messages were popped before the failure, once each; the tenth is
    # applied once in all: stored before the failure after all (its resend a duplicate), or
    # stored by its resend.
    assert records == ["u0:4"]
    assert nothing == 404
