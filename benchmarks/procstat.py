"""Memory and CPU of other processes from /proc (Linux), for the speed benchmark and the soak."""

from __future__ import annotations

import os
import time
from pathlib import Path


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """`VmRSS` (resident now) or `VmHWM` (peak resident) of `pid` in MB; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far (all threads); NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux: /proc/PID/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def descendants(pid: int) -> list[int]:
    """The live child processes of `pid`, theirs, and so on (a supervised worker's worker
    processes and their scoring processes)."""
    out: list[int] = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


class CpuMeter:
    """CPU seconds some processes use between start() and stop(), and the wall time between."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.wall_s = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds per process since start(); `wall_s` holds the wall seconds."""
        self.wall_s = max(time.monotonic() - self._t0, 1e-9)
        return {name: cpu_seconds(pid) - self._start[name] for name, pid in self.pids.items()}
