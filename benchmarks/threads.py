"""`make bench` part 2 (alone: `--threads-only`): torch threads 1 vs 2 vs auto, quiet and busy.

Issue 15: on a shared host, torch running as many threads as the host has cores cost 4-8x.
This measures the worker end to end (128 x 8, the shipped architecture) with
`VAEWATCH_TORCH_THREADS` = 1, 2 and 0 (auto: one less than the CPUs the affinity mask and
cgroup quota allow), each on a quiet machine and beside a CPU hog (one busy-loop process per
usable CPU, started before the worker and stopped after it), all in one run on one broker:

  windows/s  steady-state drain of a pre-filled topic (as `worker` in the main table)
  p50 / p99  produce -> corrected-window latency at one offered rate per condition: half the
             slowest setting's windows/s there, so every setting can keep up and the
             latencies compare the same load (4 s of it)
Each drain is capped at 10 s (a slow setting's rate is what it did by then), so the whole
comparison takes ~4 minutes.

Results: `benchmarks/results/speed-threads.json`, and a table with each setting's windows/s
as a ratio to the best setting of its condition (ratios within one run are what transfer
between machines; absolute rates on a shared machine do not).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.speed import (
    RESULTS,
    build_detector,
    latency_at,
    messages,
    publish_model,
    worker_rate,
)
from vwbase.threads import ENV_VAR, affinity_cpus, auto_threads, cgroup_cpu_quota, usable_cpus

SHAPE = (128, 8)
SETTINGS = {"1": "1", "2": "2", "auto": "0"}  # label -> VAEWATCH_TORCH_THREADS
HOG = "while True:\n    pass\n"
DRAIN_S = 10.0  # at most this long draining per setting: a slow one is measured, not waited for
LATENCY_S = 4.0  # seconds of offered load per latency run


@contextlib.contextmanager
def cpu_hogs(n: int) -> Iterator[list[int]]:
    """`n` busy-loop processes beside the worker: the 'busy machine' condition."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    try:
        time.sleep(0.5)  # running before the worker starts
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=10)


def _env(setting: str) -> dict[str, str | None]:
    # OMP_NUM_THREADS would win over auto: unset it so auto is what the worker decides
    # the scoring thread, as measured before VAEWATCH_SCORER existed: the threads compete
    # with the worker's own Python thread there (a scoring process has one busy thread)
    return {ENV_VAR: SETTINGS[setting], "OMP_NUM_THREADS": None, "VAEWATCH_SCORER": "thread"}


def _condition(
    bootstrap: str, registry: Path, model: str, raw: list[bytes], tmp: Path, broker_pid: int
) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for setting in SETTINGS:
        tag = uuid.uuid4().hex[:6]
        rate, rss, _ = worker_rate(
            bootstrap,
            registry,
            model,
            raw,
            tmp / f"thr-{tag}.log",
            broker_pid,
            _env(setting),
            drain_timeout_s=DRAIN_S,
        )
        rows[setting] = {"windows_per_s": rate, "peak_rss_mb": rss}
        print(f"   threads {setting:>4}: {rate:,.0f} windows/s", flush=True)
    offered = min(r["windows_per_s"] for r in rows.values()) / 2
    sent = raw[: int(min(len(raw), max(100, offered * LATENCY_S)))]
    for setting in SETTINGS:
        tag = uuid.uuid4().hex[:6]
        p50, p99 = latency_at(
            bootstrap, registry, model, sent, offered, tmp / f"lat-{tag}.log", _env(setting)
        )
        rows[setting].update(offered_per_s=offered, p50_ms=p50, p99_ms=p99)
        print(f"   threads {setting:>4}: p50 {p50:,.0f} ms, p99 {p99:,.0f} ms @ {offered:,.0f}/s")
    best = max(r["windows_per_s"] for r in rows.values())
    for r in rows.values():
        r["ratio_to_best"] = r["windows_per_s"] / best
    return rows


def compare_threads(bootstrap: str, broker_pid: int, tmp: Path, windows: int) -> dict[str, Any]:
    """Both conditions, every setting; writes and returns the result document."""
    window, channels = SHAPE
    name = f"threads-{window}x{channels}"
    registry = tmp / "threads-registry"
    publish_model(build_detector(window, channels), registry, name)
    raw = messages(windows, window, channels)
    cpus = usable_cpus(affinity_cpus(), cgroup_cpu_quota())
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "shape": f"{window}x{channels}",
        "windows": windows,
        "host_cpus": os.cpu_count(),
        "usable_cpus": cpus,
        "auto_threads": auto_threads(cpus),
        "hogs": cpus,
        "note": "one run on a shared machine: compare ratios within a condition",
    }
    print(f"== threads: quiet ({cpus} usable CPUs, auto = {auto_threads(cpus)})", flush=True)
    result["quiet"] = _condition(bootstrap, registry, name, raw, tmp, broker_pid)
    print(f"== threads: busy ({cpus} busy-loop processes beside the worker)", flush=True)
    with cpu_hogs(cpus):
        result["busy"] = _condition(bootstrap, registry, name, raw, tmp, broker_pid)
    result["best"] = {c: _best(result[c]) for c in ("quiet", "busy")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed-threads.json").write_text(json.dumps(result, indent=2) + "\n")
    print_threads(result)
    return result


def _best(rows: dict[str, dict[str, float]]) -> str:
    return max(rows, key=lambda s: rows[s]["windows_per_s"])


def print_threads(result: dict[str, Any]) -> None:
    print(
        f"\ntorch threads, worker {result['shape']} (auto = {result['auto_threads']}; "
        f"busy = {result['hogs']} busy-loop processes beside it)"
    )
    print(
        f"{'condition':<10}{'threads':>8}{'windows/s':>11}{'/ best':>8}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for condition in ("quiet", "busy"):
        for setting, r in result[condition].items():
            print(
                f"{condition:<10}{setting:>8}{r['windows_per_s']:>11,.0f}"
                f"{r['ratio_to_best']:>8.2f}{r['p50_ms']:>9,.0f}{r['p99_ms']:>9,.0f}"
            )
    print(f"best: quiet {result['best']['quiet']}, busy {result['best']['busy']}")
    if str(result["auto_threads"]) in SETTINGS:
        print(
            f"(auto = {result['auto_threads']} here: that row and auto are the same setting, "
            "their gap is this machine's run-to-run noise)"
        )
