"""How much of the worker's interpreter lock is in use while it drains a backlog (issue 14).

Two py-spy samplers watch one default worker (128 x C, `VAEWATCH_SCORER` as given) at once
for 8 s at 200 Hz: `--idle` (every thread, running or waiting: wall time) and `--gil` (only
the thread holding the lock). Per thread: the share of wall time it held the lock, and the
share of ticks in which any thread of the process held it. A process whose lock is held
close to all the time cannot run more Python, whatever the other cores do.

    PYTHONPATH=. .venv/bin/python -m benchmarks.study.gil_share [CHANNELS] [SCORER]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from benchmarks import profile
from benchmarks.speed import (
    build_detector,
    fill_topic,
    messages,
    publish_model,
    read_timestamps,
    start_worker,
)
from worker.broker import EmbeddedBroker

SECONDS, RATE_HZ = 8, 200


def counts(raw: str) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Samples per thread (named by its role, else its innermost frame) and per (thread,
    stage) for the worker's two threads."""
    per_thread: Counter[str] = Counter()
    per_stage: Counter[tuple[str, str]] = Counter()
    names: dict[str, str] = {}
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        tid = frames[0]
        role = profile.thread_of(frames)
        name = names.setdefault(tid, role or (frames[1].split(" (")[0] if len(frames) > 1 else tid))
        per_thread[f"{tid} {name}"] += int(n)
        if role:
            per_stage[(role, profile.stage_of(frames))] += int(n)
    return per_thread, per_stage


def main() -> None:
    channels = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    scorer = sys.argv[2] if len(sys.argv) > 2 else "process"
    spy = profile.py_spy()
    assert spy, "needs py-spy"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        registry = Path(tmp) / "registry"
        publish_model(build_detector(128, channels), registry, "gil")
        tag = uuid.uuid4().hex[:8]
        raw = messages(2000, 128, channels, prefix=tag)
        fill_topic(
            broker.bootstrap,
            f"in-{tag}",
            [raw[i % len(raw)] for i in range(int(8000 * 16 / channels**0.5))],
        )
        proc = start_worker(
            broker.bootstrap, registry, "gil", tag, Path(tmp) / "w.log", {"VAEWATCH_SCORER": scorer}
        )
        try:
            read_timestamps(broker.bootstrap, f"co-{tag}", 1, timeout_s=120)
            base = [
                spy,
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(SECONDS),
                "--rate",
                str(RATE_HZ),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
            ]
            wall = subprocess.Popen(
                [*base, "--idle", "--output", f"{tmp}/wall.txt"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            gil = subprocess.Popen(
                [*base, "--gil", "--output", f"{tmp}/gil.txt"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall.wait(60), gil.wait(60)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        wall_raw, gil_raw = Path(f"{tmp}/wall.txt").read_text(), Path(f"{tmp}/gil.txt").read_text()
    (w, ws), (g, gs) = counts(wall_raw), counts(gil_raw)
    ticks = SECONDS * RATE_HZ  # the samplers may miss ticks under load: shares are of all
    held = sum(g.values()) / ticks
    print(f"128x{channels} scorer={scorer}: lock held in {held:.2f} of {ticks} ticks")
    for name, n in w.most_common():
        print(f"  {name[:70]:70s} wall {n / ticks:.2f}  holds lock {g.get(name, 0) / ticks:.2f}")
    for (role, stage), n in sorted(ws.items()):
        holds = gs.get((role, stage), 0) / ticks
        print(f"  {role:8s} {stage:32s} wall {n / ticks:.3f}  holds lock {holds:.3f}")


if __name__ == "__main__":
    main()
