"""Memory of another process from /proc (Linux), for the speed benchmark and the soak."""

from __future__ import annotations

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
