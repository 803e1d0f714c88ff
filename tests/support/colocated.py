"""Co-located endpoints for the runtime's tests: modules whose function server the runtime starts
itself, the servers they run, and a way to await the exit of a process we are not the parent of.
"""

from __future__ import annotations

import os
import select
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parents[1]

#: ``functions``: ``co/*`` counting their messages (``support.counting_functions``), served by
#: ``pystatefun serve counter.py:functions``; each message emits ``id:message:count`` on ``out``.
COUNTER = "from support.counting_functions import counting\n\nfunctions = counting('co/counter')\n"

#: A server that only listens: on ``$PYSTATEFUN_SOCKET`` (or ``$PYSTATEFUN_PORT``), after
#: starting a child of its own and writing ``<its pid> <the child's pid>`` to ``argv[1]``.
#: With ``--ignore-sigterm`` it (and its child) ignore SIGTERM.
LISTENER = """\
import os, signal, socket, subprocess, sys, time
if "--ignore-sigterm" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1] + ".tmp", "w") as pids:
    pids.write(f"{os.getpid()} {child.pid}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if "PYSTATEFUN_SOCKET" in os.environ:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(os.environ["PYSTATEFUN_SOCKET"])
else:
    listener = socket.socket()
    listener.bind(("127.0.0.1", int(os.environ["PYSTATEFUN_PORT"])))
listener.listen()
time.sleep(600)
"""


def write_module(file: Path, command: list[str], *, functions: str = "co/*", **spec: Any) -> Path:
    """A module with one co-located endpoint (``spec`` adds to it; the counter's ``PYTHONPATH``
    is set) and the playground ingress and egress (topic ``out``) on free ports."""
    endpoint = {
        "functions": functions,
        "command": command,
        "env": {"PYTHONPATH": str(TESTS)},
        "transport": {"call": "20s"},
        **spec,
    }
    documents = [
        {"kind": "io.pystatefun.endpoints.v1/colocated", "spec": endpoint},
        {"kind": "io.statefun.playground.v1/ingress", "spec": {"port": 0}},
        {"kind": "io.statefun.playground.v1/egress", "spec": {"port": 0, "topics": ["out"]}},
    ]
    (file.parent / "counter.py").write_text(COUNTER)
    (file.parent / "listener.py").write_text(LISTENER)
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return file


def gone(pid: int, timeout_s: float = 30.0) -> bool:
    """Whether process ``pid`` has exited, waiting up to ``timeout_s`` for it, whoever its
    parent is (a ``pidfd``, Linux 5.3+). A zombie counts as exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout_s)
        return bool(readable)
    finally:
        os.close(fd)
