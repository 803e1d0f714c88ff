"""CPU time and memory of processes, from ``/proc`` (Linux).

CPU is ``utime + stime`` of ``/proc/<pid>/stat`` (every thread of the process; children not
included), in seconds. Memory is ``VmRSS`` (resident now) and ``VmHWM`` (the peak resident set
since the process started) of ``/proc/<pid>/status``, in MiB. A scenario samples every process
before and after its measured run; the difference in CPU divided by the calls made is the CPU
seconds per call of that process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sample", "cpu_delta", "sample", "sample_all"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    """One process at one instant."""

    pid: int
    cpu_s: float
    rss_mib: float
    hwm_mib: float


def sample(pid: int) -> Sample | None:
    """``pid``'s CPU seconds and memory now; None when it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    memory = {"VmRSS": 0.0, "VmHWM": 0.0}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in memory:
            memory[name] = int(value.split()[0]) / 1024
    return Sample(pid, (utime + stime) / _TICKS, memory["VmRSS"], memory["VmHWM"])


def sample_all(pids: dict[str, int]) -> dict[str, Sample]:
    """Sample every role's process; roles whose process has exited are left out."""
    found = {role: sample(pid) for role, pid in pids.items()}
    return {role: s for role, s in found.items() if s is not None}


def cpu_delta(before: dict[str, Sample], after: dict[str, Sample]) -> dict[str, float]:
    """CPU seconds each role used between two samples (same PID in both only)."""
    return {
        role: after[role].cpu_s - before[role].cpu_s
        for role in after
        if role in before and before[role].pid == after[role].pid
    }
