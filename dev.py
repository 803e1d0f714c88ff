#!/usr/bin/env python3
"""The README commands: ``python3 dev.py example``, ``python3 dev.py test``, ``python3 dev.py
bench`` (the benchmark suite, bench/README.md) and ``python3 dev.py kafka`` (a local broker).

Why a script rather than a Makefile: it must work on a fresh machine that has nothing but
Python 3.11+. Each command creates ``.venv/`` at the repository root, installs pystatefun into it
(editable) when ``pyproject.toml`` changed since the last install, then runs. Running either
command twice is safe: the second run only re-checks the install stamp.

This file uses the standard library only, because it runs before any dependency exists.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".pystatefun-install-stamp"
MIN_PYTHON = (3, 11)


def _fail(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def _run(*args: str | Path, check: bool = True) -> int:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)
    if check and completed.returncode != 0:
        _fail(f"`{' '.join(str(a) for a in args)}` exited with {completed.returncode}")
    return completed.returncode


def _ensure_venv(*extras: str) -> None:
    """Create .venv and (re)install the package when pyproject.toml or the extras changed.

    ``extras`` are optional-dependency groups of pyproject.toml (none: the plain package). The
    stamp records which groups the current pyproject.toml was installed with; any extra at all
    also satisfies a plain install.
    """
    if sys.version_info < MIN_PYTHON:
        _fail(f"pystatefun needs Python {'.'.join(map(str, MIN_PYTHON))}+, this is {sys.version}")
    if not PYTHON.exists():
        print(f"dev.py: creating {VENV.relative_to(ROOT)}/", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    have = STAMP.read_text().split() if STAMP.exists() else []
    done = set(have[1:]) if have and have[0] == wanted else set()
    needed = set(extras) or {"base"}
    if needed <= done or (needed == {"base"} and done):
        return
    # Install every group installed before too, so that one command never drops another's.
    groups = sorted((needed | done) - {"base"})
    target = f".[{','.join(groups)}]" if groups else "."
    print(f"dev.py: installing pystatefun{target[1:]} (editable) into .venv", file=sys.stderr)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target)
    STAMP.write_text(" ".join([wanted, *sorted(done | needed)]) + "\n")


#: The extras of pystatefun an example needs beyond the base install.
_EXAMPLE_EXTRAS = {"kafka-greeter": ("kafka",), "cluster": ("cluster",)}


def example() -> int:
    """The main job: run the example application end to end and print what it did.

    ``python3 dev.py example kafka-greeter`` runs ``examples/kafka-greeter/demo.py`` instead:
    with a local Kafka broker, so it also needs Java and Maven (and the ``kafka`` extra).
    ``python3 dev.py example cluster`` runs three workers on a local NATS JetStream cluster.
    """
    name = sys.argv[2] if len(sys.argv) > 2 else "greeter"
    demo = ROOT / "examples" / name / "demo.py"
    if not demo.exists():
        runnable = sorted(p.parent.name for p in (ROOT / "examples").glob("*/demo.py"))
        _fail(f"no example {name!r} with a demo.py; runnable: {', '.join(runnable)}")
    _ensure_venv(*_EXAMPLE_EXTRAS.get(name, ()))
    return _run(PYTHON, demo, check=False)


def test() -> int:
    """Lint, format check, type check, then the whole test suite."""
    _ensure_venv("dev")
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    code = _run(PYTHON, "-m", "pytest", *sys.argv[2:], check=False)
    if code == 5:
        print("dev.py: pytest collected no tests; that is a failure here", file=sys.stderr)
        return 1
    return code


def bench() -> int:
    """The benchmark suite against Restate: installs what it needs, prints a table, writes
    bench/results/ (options: ``python3 dev.py bench --help``)."""
    _ensure_venv("dev", "bench")
    return _run(PYTHON, ROOT / "bench" / "run.py", *sys.argv[2:], check=False)


def kafka() -> int:
    """A local Apache Kafka broker on 127.0.0.1 for trying things by hand (tools/kafka/):
    prints ``bootstrap 127.0.0.1:9092`` once it serves; Ctrl-C stops it. Needs Java and Maven;
    ``--port`` and ``--dir`` are passed on."""
    sys.argv = [str(ROOT / "tools" / "kafka" / "broker.py"), *sys.argv[2:]]
    spec = importlib.util.spec_from_file_location("kafka_broker", sys.argv[0])
    assert spec is not None
    assert spec.loader is not None
    broker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(broker)
    code: int = broker.main()
    return code


def main() -> int:
    commands = {"example": example, "test": test, "bench": bench, "kafka": kafka}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        _fail(
            f"usage: python3 dev.py {{{'|'.join(commands)}}} "
            "[example name | pytest args for test | options for bench]"
        )
    return commands[sys.argv[1]]()


if __name__ == "__main__":
    raise SystemExit(main())
