"""Throw-away: py-spy (with --subprocesses) on a worker in VAEWATCH_SCORER mode over a backlog."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from benchmarks.profile import py_spy
from benchmarks.speed import build_detector, fill_topic, messages, publish_model, read_timestamps, start_worker
from worker.broker import EmbeddedBroker

channels = int(sys.argv[1])
mode = sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    reg = Path(tmp) / "reg"
    det = build_detector(128, channels)
    publish_model(det, reg, "m")
    tag = uuid.uuid4().hex[:8]
    fill_topic(broker.bootstrap, f"in-{tag}", messages(n, 128, channels))
    proc = start_worker(broker.bootstrap, reg, "m", tag, Path(tmp) / "w.log", {"VAEWATCH_SCORER": mode})
    read_timestamps(broker.bootstrap, f"co-{tag}", 1, timeout_s=120)
    out = Path(f"/tmp/scorer-prof-{channels}-{mode}.txt")
    subprocess.run([py_spy(), "record", "--pid", str(proc.pid), "--duration", "6", "--rate", "200",
                    "--format", "raw", "--threads", "--idle", "--nonblocking", "--subprocesses",
                    "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
# summarise: per thread (first frame) the innermost 'interesting' frames
per: dict[str, Counter[str]] = {}
for line in out.read_text().splitlines():
    stack, _, count = line.rpartition(" ")
    frames = stack.split(";")
    thread = frames[0][:60]
    inner = ";".join(f.split(" (")[0] for f in frames[-3:])
    per.setdefault(thread, Counter())[inner] += int(count)
for thread, c in per.items():
    total = sum(c.values())
    print(f"\n== {thread} ({total} samples)")
    for k, v in c.most_common(12):
        print(f"  {v / total:6.1%}  {k[:150]}")
