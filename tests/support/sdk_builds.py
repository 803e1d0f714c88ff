"""The Go and Java SDK programs of ``tests/sdks/``, built once with the machine's ``go`` and
``mvn`` and rebuilt only when their sources change.

- Go (``tests/sdks/go/``, ``github.com/apache/flink-statefun/statefun-sdk-go/v3`` v3.3.0, pinned
  by the committed ``go.mod`` and ``go.sum``): ``go build`` into ``tests/sdks/go/bin/``; modules
  come from the Go module proxy into the usual module cache.
- Java (``tests/sdks/java/``, ``org.apache.flink:statefun-sdk-java:3.3.0`` from Maven Central):
  ``mvn compile dependency:build-classpath`` into ``tests/sdks/java/target/``; jars go to the
  usual local repository (``~/.m2``, or ``-Dmaven.repo.local`` in ``MAVEN_OPTS``).

Both output directories are git-ignored. A stamp written last holds a hash of the sources and
the tool, so an interrupted build is redone rather than trusted and a second test run costs a
hash; an exclusive lock on a file in the output directory keeps parallel test processes from
building at the same time. A missing tool is a clear error, never a skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GO_PROJECT = ROOT / "tests" / "sdks" / "go"
JAVA_PROJECT = ROOT / "tests" / "sdks" / "java"
_GO_OUT = GO_PROJECT / "bin"
_JAVA_OUT = JAVA_PROJECT / "target"
_BUILD_TIMEOUT_S = 900


def _tool(name: str, why: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` is not on PATH: {why}")
    return found


def _sources_hash(project: Path, skip: Path, tool: str) -> str:
    digest = hashlib.sha256(tool.encode())
    for path in sorted(p for p in project.rglob("*") if p.is_file() and skip not in p.parents):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _build_once(out: Path, key: str, build: Callable[[], list[str | Path]], what: str) -> None:
    stamp = out / ".built"
    if stamp.exists() and stamp.read_text().strip() == key:
        return
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if stamp.exists() and stamp.read_text().strip() == key:
            return  # another process built it while we waited
        stamp.unlink(missing_ok=True)
        command = build()
        completed = subprocess.run(
            [str(c) for c in command],
            cwd=out.parent,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"building {what} failed ({completed.returncode}): {' '.join(map(str, command))}"
                f"\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        stamp.write_text(key + "\n")


def go_server() -> list[str]:
    """The argv of the Go SDK's server (append a port), built on first use."""
    go = _tool("go", "the official Go SDK's programs are built with it")
    version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    binary = _GO_OUT / "sdk-server"
    key = _sources_hash(GO_PROJECT, _GO_OUT, version)
    # -mod=readonly: the committed go.sum decides the modules; a build never rewrites it.
    _build_once(_GO_OUT, key, lambda: [go, "build", "-mod=readonly", "-o", binary, "."], "Go")
    return [str(binary)]


def java_server() -> list[str]:
    """The argv of the Java SDK's server (append a port), built on first use."""
    java = _tool("java", "the official Java SDK's programs run on it")
    mvn = _tool("mvn", "the official Java SDK comes from Maven Central with Maven")
    classpath_file = _JAVA_OUT / "classpath.txt"
    key = _sources_hash(JAVA_PROJECT, _JAVA_OUT, java)
    build: list[str | Path] = [mvn, "-B", "-q", "compile", "dependency:build-classpath"]
    build.append(f"-Dmdep.outputFile={classpath_file}")
    _build_once(_JAVA_OUT, key, lambda: build, "Java")
    classpath = f"{_JAVA_OUT / 'classes'}:{classpath_file.read_text().strip()}"
    return [java, "-cp", classpath, "pystatefun.sdks.SdkServer"]
