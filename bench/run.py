#!/usr/bin/env python3
"""The benchmark suite: pystatefun (our SDK, the official StateFun SDK) against Restate.

    python3 dev.py bench [--quick] [--peers ...] [--scenarios ...] [--entities N] [--seconds S]

Starts every peer, runs every scenario for every peer in turn (``bench/harness/scenarios.py``),
stops every process it started, prints a table and writes ``<out>/<UTC timestamp>.md`` and
``.png`` (+ ``latest.md``/``latest.png``, and the raw figures as ``.json``). bench/README.md
explains what each scenario measures.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness.peer import Peer
from harness.report import result_line, write_report
from harness.scenarios import SCENARIOS, Loader, Result, Settings, run_all

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("pystatefun-ours", "pystatefun-official", "restate")


def make_peer(name: str) -> Peer:
    if name == "pystatefun-ours":
        from harness.pystatefun_peer import PystatefunPeer

        return PystatefunPeer("ours")
    if name == "pystatefun-official":
        from harness.pystatefun_peer import PystatefunPeer

        return PystatefunPeer("official")
    if name == "restate":
        try:
            from harness.restate_peer import RestatePeer
        except ImportError as exc:
            raise SystemExit(f"bench: the Restate peer is not available ({exc})") from exc
        return RestatePeer()
    raise SystemExit(f"bench: unknown peer {name!r}; choose from {', '.join(PEERS)}")


def _names(text: str, known: tuple[str, ...] | list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"bench: unknown {what} {unknown}; choose from {', '.join(known)}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated (default: all)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--entities", type=int, help="recovery: entities in state (1,000,000)")
    parser.add_argument("--seconds", type=float, help="per measured throughput run (10)")
    parser.add_argument("--backlog", type=int, help="recovery: one-way adds before kill (20,000)")
    parser.add_argument(
        "--preload-budget", type=float, help="recovery: seconds to send entities one-way (180)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> Settings:
    settings = Settings.quick() if args.quick else Settings()
    overrides = {
        "entities": args.entities,
        "seconds": args.seconds,
        "backlog": args.backlog,
        "preload_budget_s": args.preload_budget,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(settings, name, value)
    return settings


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    peer_names = _names(args.peers, PEERS, "peer")
    scenarios = _names(args.scenarios, list(SCENARIOS), "scenario")
    settings = make_settings(args)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    started = time.monotonic()
    peers: list[Peer] = []
    notes: list[str] = []
    loader: Loader | None = None
    results: list[Result] = []
    try:
        for name in peer_names:
            peer = make_peer(name)
            print(f"bench: starting {name}", file=sys.stderr, flush=True)
            try:
                peer.start()
            except Exception as exc:  # noqa: BLE001 - the others can still run
                print(f"bench: {name} did not start: {exc}", file=sys.stderr)
                notes.append(f"{name} did not start: {str(exc).splitlines()[0]}")
                continue
            peers.append(peer)
        if not peers:
            print("bench: no peer started", file=sys.stderr)
            return 1
        loader = Loader()
        results = run_all(
            peers,
            scenarios,
            settings,
            loader,
            lambda r: print(f"bench: {result_line(r)}", file=sys.stderr, flush=True),
        )
    except KeyboardInterrupt:
        notes.append("interrupted: the run is incomplete")
        print("bench: interrupted; stopping", file=sys.stderr)
    finally:
        if loader is not None:
            loader.close()
        for peer in peers:
            try:
                peer.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others all the same
                print(f"bench: stopping {peer.name}: {exc}", file=sys.stderr)
    if not results:
        return 1
    notes.append(f"the whole run took {time.monotonic() - started:.0f} s")
    path = write_report(results, settings, args.out, stamp, notes)
    print(f"\nbench: wrote {path} and {path.with_suffix('.png')}", file=sys.stderr)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
