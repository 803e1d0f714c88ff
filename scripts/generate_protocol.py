#!/usr/bin/env python3
"""Regenerate ``pystatefun.protocol._generated`` from ``proto/`` with protoc from PyPI.

Run it with the dev environment's Python (``.venv/bin/python scripts/generate_protocol.py``)
after editing a ``.proto`` file, and commit the result. ``--out DIR`` writes somewhere else; the
test suite uses that to prove the committed modules are exactly what the protos produce.

protoc comes from ``grpcio-tools`` (pinned in pyproject's dev extras) so that everybody, CI
included, generates with the same compiler: generated code records the protoc version and checks
it against the protobuf runtime at import time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "src" / "pystatefun" / "protocol" / "_generated"


def proto_files() -> list[Path]:
    """Every .proto under proto/, sorted so runs are repeatable."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out: Path) -> None:
    """Write ``*_pb2.py`` and ``*_pb2.pyi`` for every proto into ``out``."""
    from grpc_tools import protoc  # noqa: PLC0415 - a dev dependency; --help works without it

    out.mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = ["protoc", f"-I{PROTO_ROOT}", f"--python_out={out}", f"--pyi_out={out}", *files]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code} for {files}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args()
    generate(args.out)
    print(f"generated {len(proto_files())} proto files into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
