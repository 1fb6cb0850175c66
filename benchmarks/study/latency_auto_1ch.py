"""p50/p99 latency on 128 x 1 of the worker as shipped since b826caf (VAEWATCH_PROCESSES=auto:
2 processes here for a 1-channel model) against one process (scoring process, the default
before), at the 02:51Z make-bench table's 50% point (3,427 windows/s; 253 / 474 ms there),
alternated, 3 runs each, fresh topics. Usage (repo root, machine idle):
  PYTHONPATH=. .venv/bin/python benchmarks/study/latency_auto_1ch.py
Results: benchmarks/results/latency-processes.txt."""
import tempfile
from pathlib import Path

import benchmarks.speed as speed
from benchmarks.study.latency_processes import compare_arms
from worker.broker import EmbeddedBroker

RATE = 3427
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    reg = Path(tmp) / "reg"
    speed.publish_model(speed.build_detector(128, 1), reg, "m")
    arms = {
        "auto": (speed.PROCESSES_AUTO, speed.auto_processes(reg, "m")),
        "one process": ({"VAEWATCH_SCORER": "process"}, 1),
    }
    compare_arms(broker.bootstrap, reg, 1, RATE, arms, 3, tmp)
