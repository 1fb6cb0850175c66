"""p50/p99 latency on 128 x 1 of the worker as shipped since b826caf (VAEWATCH_PROCESSES=auto:
2 processes here for a 1-channel model) against one process (scoring process, the default
before), at the 02:51Z make-bench table's 50% point (3,427 windows/s; 253 / 474 ms there),
alternated, 3 runs each, fresh topics. Usage (repo root, machine idle):
  PYTHONPATH=. .venv/bin/python benchmarks/study/latency_auto_1ch.py
Results: benchmarks/results/latency-processes.txt."""
import statistics
import tempfile
from pathlib import Path

import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

RATE = 3427
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    reg = Path(tmp) / "reg"
    speed.publish_model(speed.build_detector(128, 1), reg, "m")
    ARMS = {
        "auto": (speed.PROCESSES_AUTO, speed.auto_processes(reg, "m")),
        "one process": ({"VAEWATCH_SCORER": "process"}, 1),
    }
    raw = speed.messages(1500, 128, 1)
    res = {a: [] for a in ARMS}
    for rep in range(3):
        for arm in list(ARMS) if rep % 2 == 0 else list(ARMS)[::-1]:
            env, processes = ARMS[arm]
            log = Path(tmp) / f"l-{arm.replace(' ', '_')}-{rep}.log"
            p50, p99 = speed.latency_at(
                broker.bootstrap, reg, "m", raw, RATE, log, env, processes=processes
            )
            res[arm].append((p50, p99))
            print(arm, processes, RATE, p50, p99, flush=True)
    for arm, v in res.items():
        p50 = statistics.median(p for p, _ in v)
        p99 = statistics.median(q for _, q in v)
        print(f"128x1 {arm} @ {RATE}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms  {v}", flush=True)
