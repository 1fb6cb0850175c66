"""p50/p99 latency of VAEWATCH_PROCESSES=auto (2 processes here; "as shipped" when it ran)
against one process with its scoring process, at the same offered rates: half of the 14:40Z
one-process maxima (3,844 / 1,698 / 463 windows/s), alternated, 2 runs each, fresh topics.
Usage (repo root, machine idle):
  PYTHONPATH=. .venv/bin/python benchmarks/study/latency_processes.py
Results: benchmarks/results/latency-processes.txt. `compare_arms` also serves
latency_auto_1ch.py."""
import statistics
import tempfile
from pathlib import Path

import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

RATES = {1: 3844, 8: 1698, 38: 463}
ARMS = {
    # auto as it was then (2 processes on 2 CPUs for every width; since, auto gives one
    # process to models of more than one channel): pinned, so the study reruns as it ran
    "as shipped": ({**speed.PROCESSES_AUTO, "VAEWATCH_PROCESSES": "2"}, 2),
    "one process": ({"VAEWATCH_SCORER": "process"}, 1),
}


def compare_arms(bootstrap, reg, channels, rate, arms, reps, tmp):
    """Each arm's (env, processes) latency at `rate`, alternated `reps` times on fresh
    topics; prints every run and each arm's medians."""
    raw = speed.messages(1500, 128, channels)
    res = {a: [] for a in arms}
    for rep in range(reps):
        for arm in list(arms) if rep % 2 == 0 else list(arms)[::-1]:
            env, processes = arms[arm]
            log = Path(tmp) / f"l{channels}-{arm.replace(' ', '_')}-{rep}.log"
            p50, p99 = speed.latency_at(
                bootstrap, reg, "m", raw, rate, log, env, processes=processes
            )
            res[arm].append((p50, p99))
            print(channels, arm, processes, rate, p50, p99, flush=True)
    for arm, v in res.items():
        p50 = statistics.median(p for p, _ in v)
        p99 = statistics.median(q for _, q in v)
        print(f"128x{channels} {arm} @ {rate}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms  {v}", flush=True)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        for ch, rate in RATES.items():
            reg = Path(tmp) / f"reg{ch}"
            speed.publish_model(speed.build_detector(128, ch), reg, "m")
            compare_arms(broker.bootstrap, reg, ch, rate, ARMS, 2, tmp)
