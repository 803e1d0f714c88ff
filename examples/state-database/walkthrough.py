"""Your state is a database, end to end: bulk load, serve traffic, query, back up, restore.

Runs each command as a user would, in a temporary directory, and prints it with its output:

1. ``pystatefun bootstrap`` loads ``users.csv`` (visits and a JSON profile per user);
2. ``pystatefun run`` serves the module; three visits arrive through the ingress;
3. ``pystatefun sql`` and ``pystatefun state get`` read the live state;
4. ``pystatefun savepoint create`` backs it up while the runtime runs;
5. the runtime stops; ``pystatefun savepoint restore`` restores the backup into a new data dir
   with another number of key groups, and ``pystatefun sql --savepoint`` reads the backup.

    .venv/bin/python examples/state-database/walkthrough.py
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
DEADLINE_S = 30.0


def pystatefun(*args: str | Path, quiet: bool = False) -> str:
    """Run one command, print it and its output (unless ``quiet``), and return its stdout;
    a failure ends the walkthrough (``quiet`` ones return "" instead)."""
    argv = [str(a) for a in args]
    done = subprocess.run([PYSTATEFUN, *argv], capture_output=True, text=True, check=False)
    if quiet:
        return done.stdout if done.returncode == 0 else ""
    print("$ pystatefun " + " ".join(shlex.quote(a) for a in argv))
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  {line}")
    if done.returncode != 0:
        raise SystemExit(f"pystatefun {args[0]} failed with exit code {done.returncode}")
    return done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pystatefun-walkthrough-") as tmp:
        work = Path(tmp)
        data, restored, backup = work / "data", work / "restored", work / "backup.psfsp"
        pystatefun("bootstrap", HERE / "users.csv", "--type", "example/user", "--id-column",
                   "user_id", "--state", "visits=visits:int", "--state",
                   "profile=profile:json:example/Profile", "--data-dir", data)  # fmt: skip
        module = work / "module.yaml"
        module.write_text(
            (HERE / "module.yaml").read_text()
            .replace("functions.py:functions", f"{HERE / 'functions.py'}:functions")
            .replace("port: 8090", "port: 0")
        )  # fmt: skip
        runtime = subprocess.Popen(
            [PYSTATEFUN, "run", module, "--data-dir", data],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert runtime.stdout is not None
            ingress = ""
            while (line := runtime.stdout.readline().strip()) != "ready":
                if not line:
                    raise SystemExit("pystatefun run exited before it was ready")
                if line.startswith("ingress "):
                    ingress = line.split(" ", 1)[1]
            print(f"$ pystatefun run module.yaml --data-dir data   # ingress {ingress}")
            for user in ("alice", "alice", "frank"):
                url = f"{ingress}/example/user/{user}"  # the runtime, on 127.0.0.1
                request = urllib.request.Request(url, data=b"hi")  # noqa: S310
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    print(f"  visit {user}: HTTP {response.status}")
            deadline = time.monotonic() + DEADLINE_S
            while True:  # the ingress acknowledges before the function runs: wait for it
                found = pystatefun("state", "get", "example/user", "frank", "--data-dir", data,
                                   quiet=True)  # fmt: skip
                if json.loads(found or "{}").get("visits", {}).get("value") == 1:
                    pystatefun("state", "get", "example/user", "frank", "--data-dir", data)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("the visits were never processed")
                time.sleep(0.2)
            pystatefun("sql", 'SELECT id, value AS visits FROM "example/user.visits" '
                       "ORDER BY value DESC LIMIT 3", "--data-dir", data)  # fmt: skip
            pystatefun("sql", "SELECT json_extract(value, '$.tier') AS tier, count(*) AS users "
                       'FROM "example/user.profile" GROUP BY tier ORDER BY tier',
                       "--format", "json", "--data-dir", data)  # fmt: skip
            pystatefun("savepoint", "create", backup, "--data-dir", data)
        finally:
            runtime.send_signal(signal.SIGTERM)
            runtime.wait(timeout=60)
        pystatefun("savepoint", "restore", backup, "--data-dir", restored, "--key-groups", "16")
        pystatefun("state", "get", "example/user", "alice", "--data-dir", restored)
        pystatefun("sql", 'SELECT sum(value) AS visits FROM "example/user.visits"',
                   "--savepoint", backup)  # fmt: skip
    print("walkthrough done: loaded, served, queried, backed up and restored")


if __name__ == "__main__":
    main()
