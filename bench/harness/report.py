"""The report: a table on stdout, and ``<out>/<UTC timestamp>.md`` + ``.png`` (+ ``latest.*``).

The markdown holds the machine, the versions, every figure per scenario per peer, and the
targets (each pystatefun peer against Restate from the same run). The chart (matplotlib, Agg)
has grouped bars: throughput per scenario, and p50 latency per scenario, one bar per peer.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scenarios import Result, Settings

__all__ = ["environment", "scenario_table", "targets", "write_report"]

ROOT = Path(__file__).resolve().parents[2]
RESTATE = "restate"
ROLES = ("server", "service", "load")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_rev() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return f"{rev} (+ uncommitted changes in src/)" if dirty else rev


def environment() -> dict[str, str]:
    """The machine and the versions under test."""
    try:
        from .restate_peer import RESTATE_VERSION, SDK_VERSION
    except ImportError:
        RESTATE_VERSION, SDK_VERSION = "1.7.12", "1.2.0"  # noqa: N806 - the peer's names
    return {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "pystatefun": _git_rev(),
        "restate": f"restate-server {RESTATE_VERSION}, restate-sdk (Python) {SDK_VERSION}",
        "statefun": "apache-flink-statefun (Python SDK) 3.3.0",
    }


# --- formatting -------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _roles(result: Result, values: dict[str, float], fmt: Callable[[float], str]) -> list[str]:
    return [fmt(values[r]) if r in values else "-" for r in ROLES]


def _extra(result: Result) -> str:
    e = result.extra
    if result.scenario == "one-way" and "visible_s" in e:
        return f"all visible after {e['visible_s']:.2f} s; end to end {e['end_to_end_rate']:,.0f}/s"
    if result.scenario == "delayed" and "ticks" in e:
        return (
            f"{e['ticks']} ticks; lateness p50 {e['lateness_p50_ms']:.1f} ms, "
            f"p99 {e['lateness_p99_ms']:.1f} ms, max {e['lateness_max_ms']:.1f} ms"
        )
    if result.scenario == "recovery" and "serving_s" in e:
        backlog = f"backlog {e['backlog']:,}"
        if "pending_at_kill" in e:
            backlog += f" ({e['pending_at_kill']:,} still in mailboxes at the kill)"
        return (
            f"{e['entities']:,} entities ({e['preloaded']}); {backlog}; serving again "
            f"{e['serving_s']:.3f} s, backlog drained {e['drained_s']:.2f} s after restart; "
            f"server RSS before kill {e['server_rss_before_kill_mib']:.0f} MiB"
        )
    return ""


def scenario_table(results: list[Result], scenario: str) -> list[str]:
    """The markdown table of one scenario, one row per peer."""
    rows = []
    for r in (r for r in results if r.scenario == scenario):
        lat = r.latency_ms
        notes = _extra(r)
        if r.errors:
            shown = "; ".join(r.errors[:3]) + (
                f" (+{len(r.errors) - 3})" if len(r.errors) > 3 else ""
            )
            notes = f"{notes}; **errors**: {shown}" if notes else f"**errors**: {shown}"
        bad = {k: v for k, v in r.statuses.items() if k not in ("200", "202")}
        if bad:
            notes += f"; statuses {bad}"
        rows.append(
            [
                r.peer,
                _n(r.calls),
                _n(r.throughput),
                _ms(lat.get("p50")),
                _ms(lat.get("p99")),
                *_roles(r, r.cpu_ms_per_call, lambda v: f"{v:.3f}"),
                *_roles(r, r.rss_mib, lambda v: f"{v:.0f}"),
                notes,
            ]
        )
    header = [
        "peer",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/call server",
        "service",
        "load",
        "RSS MiB server",
        "service",
        "load",
        "notes",
    ]
    return _table(header, rows)


# --- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """One target for one peer; ``ratio`` is None for an absolute target."""

    what: str
    peer: str
    ours: float
    theirs: float | None
    ratio: float | None
    goal: str
    met: bool


def _find(results: list[Result], scenario: str, peer: str) -> Result | None:
    for r in results:
        if r.scenario == scenario and r.peer == peer and not (r.errors and r.calls == 0):
            return r
    return None


Metric = Callable[[Result], float | None]
TIMES = "\u00d7"  # the multiplication sign


def _throughput(r: Result) -> float | None:
    return r.throughput


def _end_to_end(r: Result) -> float | None:
    value = r.extra.get("end_to_end_rate")
    return float(value) if value is not None else None


def _p50(r: Result) -> float | None:
    return r.latency_ms.get("p50")


def _p99(r: Result) -> float | None:
    return r.latency_ms.get("p99")


def _server_rss(r: Result) -> float | None:
    return r.rss_mib.get("server")


@dataclass(frozen=True)
class RatioTarget:
    """ours(scenario) / Restate's theirs(scenario) must be at least (or at most) ``goal``."""

    what: str
    scenario: str
    ours: Metric
    theirs: Metric
    goal: float
    at_least: bool
    label: str


RATIO_TARGETS = [
    RatioTarget("throughput, 64 in flight over 1,000 keys (calls/s)", "keys-1000",
                _throughput, _throughput, 5, True, f"≥ 5{TIMES}"),
    RatioTarget("throughput, 64 in flight on one hot key (calls/s)", "hot-key",
                _throughput, _throughput, 5, True, f"≥ 5{TIMES}"),
    RatioTarget("one-way, end to end (adds/s)", "one-way",
                _end_to_end, _end_to_end, 5, True, f"≥ 5{TIMES}"),
    RatioTarget("sequential p50 (ms)", "sequential", _p50, _p50, 1 / 3, False, "≤ ⅓"),
    RatioTarget("3-hop chain p50 (ms)", "chain", _p50, _p50, 1 / 3, False, "≤ ⅓"),
    *(
        RatioTarget(f"{scenario}: our p99 against Restate's p50 (ms)", scenario,
                    _p99, _p50, 3, False, f"≤ 3{TIMES}")
        for scenario in ("sequential", "keys-1000", "hot-key", "chain")
    ),
    *(
        RatioTarget(f"server RSS after {scenario} (MiB)", scenario,
                    _server_rss, _server_rss, 0.25, False, "≤ ¼")
        for scenario in ("sequential", "keys-1000", "hot-key", "one-way", "chain", "delayed",
                         "recovery")
    ),
]  # fmt: skip
RECOVERY_SERVING_S = 1.0


def targets(results: list[Result]) -> list[Target]:
    """Each pystatefun peer against Restate, as the issue states the targets."""
    found: list[Target] = []
    peers = sorted({r.peer for r in results if r.peer != RESTATE})
    for spec in RATIO_TARGETS:
        theirs = _find(results, spec.scenario, RESTATE)
        for peer in peers:
            ours = _find(results, spec.scenario, peer)
            if ours is None or theirs is None:
                continue
            a, b = spec.ours(ours), spec.theirs(theirs)
            if a is None or not b:
                continue
            value = a / b
            met = value >= spec.goal if spec.at_least else value <= spec.goal
            found.append(Target(spec.what, peer, a, b, value, spec.label, met))
    restate = _find(results, "recovery", RESTATE)
    for peer in [*peers, RESTATE]:
        r = _find(results, "recovery", peer)
        if r is None or "serving_s" not in r.extra:
            continue
        other = restate.extra.get("serving_s") if restate is not None and r is not restate else None
        value = float(r.extra["serving_s"])
        what = f"recovery, {r.extra['entities']:,} entities: serving again after restart (s)"
        found.append(Target(what, peer, value, other, None, "≤ 1 s", value <= RECOVERY_SERVING_S))
    return found


def _targets_table(found: list[Target]) -> list[str]:
    rows = [
        [
            t.what,
            t.peer,
            _ms(t.ours),
            _ms(t.theirs),
            "-" if t.ratio is None else f"{t.ratio:.2f}{TIMES}",
            t.goal,
            "met" if t.met else "**missed**",
        ]
        for t in found
    ]
    return _table(["target", "peer", "value", "Restate", "ratio", "goal", "result"], rows)


# --- chart ------------------------------------------------------------------------------------

THROUGHPUT_BARS: list[tuple[str, str, Callable[[Result], float | None]]] = [
    ("sequential", "sequential", lambda r: r.throughput),
    ("keys-1000", "64 in flight,\n1,000 keys", lambda r: r.throughput),
    ("hot-key", "64 in flight,\nhot key", lambda r: r.throughput),
    ("one-way", "one-way\naccept", lambda r: r.throughput),
    ("one-way", "one-way\nend to end", lambda r: r.extra.get("end_to_end_rate")),
    ("chain", "3-hop chain", lambda r: r.throughput),
]
LATENCY_BARS: list[tuple[str, str, Callable[[Result], float | None]]] = [
    ("sequential", "sequential", lambda r: r.latency_ms.get("p50")),
    ("keys-1000", "64 in flight,\n1,000 keys", lambda r: r.latency_ms.get("p50")),
    ("hot-key", "64 in flight,\nhot key", lambda r: r.latency_ms.get("p50")),
    ("one-way", "one-way\nack", lambda r: r.latency_ms.get("p50")),
    ("chain", "3-hop chain", lambda r: r.latency_ms.get("p50")),
    ("delayed", "1 s timer\nlateness", lambda r: r.extra.get("lateness_p50_ms")),
]


def _chart(results: list[Result], peers: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 8.5))
    panels = [(THROUGHPUT_BARS, "calls/s (log)", "throughput"), (LATENCY_BARS, "ms (log)", "p50")]
    for ax, (bars, ylabel, name) in zip(axes, panels, strict=True):
        width = 0.8 / max(1, len(peers))
        for i, peer in enumerate(peers):
            xs, heights = [], []
            for x, (scenario, _, get) in enumerate(bars):
                r = _find(results, scenario, peer)
                value = get(r) if r is not None else None
                if value:
                    xs.append(x + (i - (len(peers) - 1) / 2) * width)
                    heights.append(float(value))
            rects = ax.bar(xs, heights, width, label=peer)
            ax.bar_label(rects, labels=[_short(h) for h in heights], fontsize=7, padding=1)
        ax.set_xticks(range(len(bars)), [label for _, label, _ in bars], fontsize=8)
        if any(ax.containers and rect.get_height() > 0 for rect in ax.patches):
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


# --- the report -------------------------------------------------------------------------------

SCENARIO_TITLES = {
    "sequential": "sequential request-reply on one key (1 in flight)",
    "keys-1000": "request-reply, 64 in flight over 1,000 keys",
    "hot-key": "request-reply, 64 in flight on one hot key",
    "one-way": "one-way adds, 64 in flight over 1,000 keys (calls/s = accept rate; latency = ack)",
    "chain": "3-hop chain A → B → C, each durable",
    "delayed": "delayed messages (1 s); latency = the schedule request",
    "recovery": "recovery after kill -9 (CPU per backlog message, from restart until drained)",
}


def render(
    results: list[Result], settings: Settings, env: dict[str, str], stamp: str, notes: list[str]
) -> str:
    peers = list(dict.fromkeys(r.peer for r in results))
    lines = [f"# Benchmark run {stamp}", ""]
    lines += [f"- **{k}**: {v}" for k, v in env.items()]
    lines += [
        f"- **peers**: {', '.join(peers)}",
        f"- **settings**: {settings.seconds:g} s per measured run (after a warm-up of "
        f"{settings.warmup_s:g} s or {settings.warmup_calls} calls), at most "
        f"{settings.max_calls:,} calls; {settings.inflight} in flight; chain "
        f"{settings.chain_inflight} in flight; {settings.ticks} ticks; recovery with "
        f"{settings.entities:,} entities and a backlog of {settings.backlog:,}",
        "- durable writes on every peer (pystatefun `--durability fsync`; Restate's log fsyncs "
        "its WAL); everything on 127.0.0.1; one load generator process for every peer",
        "",
    ]
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    found = targets(results)
    lines += ["## Targets (against Restate, same run)", ""]
    lines += _targets_table(found) if found else ["No Restate figures in this run."]
    lines.append("")
    for scenario, title in SCENARIO_TITLES.items():
        if any(r.scenario == scenario for r in results):
            lines += [f"## {scenario}: {title}", "", *scenario_table(results, scenario), ""]
    lines += [
        "CPU ms/call: CPU time (user + system, all threads) each process used during the "
        "measured run, divided by the calls answered. RSS: resident memory after the run.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    results: list[Result], settings: Settings, out: Path, stamp: str, notes: list[str]
) -> Path:
    """Write the markdown, the JSON and the chart; print the markdown; the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    text = render(results, settings, env, stamp, notes)
    md = out / f"{stamp}.md"
    png = out / f"{stamp}.png"
    md.write_text(text + f"\n![chart]({png.name})\n")
    (out / f"{stamp}.json").write_text(
        json.dumps(
            {
                "environment": env,
                "settings": vars(settings),
                "results": [r.as_dict() for r in results],
            },
            indent=1,
        )
    )
    peers = list(dict.fromkeys(r.peer for r in results))
    _chart(results, peers, png, f"pystatefun bench {stamp} ({env['cores']} cores, {env['cpu']})")
    (out / "latest.md").write_text(text + "\n![chart](latest.png)\n")
    shutil.copyfile(png, out / "latest.png")
    print(text)
    return md


def result_line(result: Result) -> str:
    """One progress line for stderr while the run goes on."""
    parts: list[Any] = [f"{result.scenario:<10} {result.peer:<20}"]
    if result.throughput is not None:
        parts.append(f"{result.throughput:>9,.0f}/s")
    if result.latency_ms:
        parts.append(
            f"p50 {_ms(result.latency_ms.get('p50'))} ms p99 {_ms(result.latency_ms.get('p99'))} ms"
        )
    extra = _extra(result)
    if extra:
        parts.append(extra)
    if result.errors:
        parts.append(f"errors: {result.errors[:2]}")
    return "  ".join(str(p) for p in parts)
