"""p50/p99 latency of the default worker at the 02:51Z make-bench table's offered rates (half its
max) and at 14:40Z's (half of that run's max), alternated, 2 runs each, each run on fresh topics
(deleted afterwards). Usage (repo root, machine idle):
  PYTHONPATH=. .venv/bin/python benchmarks/study/latency_fixed_rates.py
Results: benchmarks/results/latency-fixed-rates.txt."""
import statistics, sys, tempfile
from pathlib import Path
import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

RATES = {1: (3427, 3844), 8: (1282, 1698), 38: (333, 463)}
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    for ch, rates in RATES.items():
        reg = Path(tmp) / f"reg{ch}"
        speed.publish_model(speed.build_detector(128, ch), reg, "m")
        raw = speed.messages(1500, 128, ch)
        res = {r: [] for r in rates}
        for rep in range(2):
            for r in (rates if rep % 2 == 0 else rates[::-1]):
                p50, p99 = speed.latency_at(broker.bootstrap, reg, "m", raw, r, Path(tmp) / f"l{ch}-{r}-{rep}.log", {"VAEWATCH_SCORER": "process"})
                res[r].append((p50, p99))
                print(ch, r, p50, p99, flush=True)
        for r, v in res.items():
            print(f"128x{ch} @ {r}/s: p50 {statistics.median(p for p,_ in v):.0f} ms, p99 {statistics.median(q for _,q in v):.0f} ms  {v}", flush=True)
