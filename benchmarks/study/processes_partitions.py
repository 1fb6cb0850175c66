"""VAEWATCH_PROCESSES=auto (2 processes here; the default setting from 0047da0 to the
session's last commits, hence the arm's name "default") against one process (scoring
process), each on input topics of 4 and 8 partitions, alternated, same broker.

    python -m benchmarks.study.processes_partitions REPS CHANNELS...

ARMS (env, comma list; default all) and PARTITIONS (default 4,8) narrow a run.
Why: in `make bench` (17:43Z) the shipped default read below one process on 8 and 38
channels, with the broker busier; its topic had 4 partitions (2 a process), the separate
two-process row's 8 (4 a process). Results: benchmarks/results/processes-partitions.txt.
"""

import os
import sys
import tempfile
from pathlib import Path

from benchmarks.speed import build_detector, drain_windows, joined_rate, messages, publish_model
from worker.broker import EmbeddedBroker

ARMS = {
    # VAEWATCH_PROCESSES=auto as it was then: 2 processes on 2 CPUs for every width (since,
    # auto gives wider models one process); pinned, so the study reruns as it ran
    "default": {"VAEWATCH_PROCESSES": "2"},
    "default+scoring-process": {"VAEWATCH_PROCESSES": "2", "VAEWATCH_SCORER": "process"},
    "one-process": {"VAEWATCH_PROCESSES": "1", "VAEWATCH_SCORER": "process"},
}
PARTITIONS = (4, 8)


def rate(bootstrap, broker_pid, registry, model, raw, log, arm, partitions):
    one = not arm.startswith("default")
    r, _, cores = joined_rate(
        bootstrap, registry, model, raw, log, broker_pid, ARMS[arm], 1 if one else 2, partitions
    )
    return r, cores


def main() -> None:
    reps, shapes = int(sys.argv[1]), [int(c) for c in sys.argv[2:]]
    arms = [a for a in ARMS if a in os.environ.get("ARMS", ",".join(ARMS)).split(",")]
    partitions_tried = [int(p) for p in os.environ.get("PARTITIONS", "4,8").split(",")]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        registry = Path(tmp) / "registry"
        for channels in shapes:
            name = f"pp-128x{channels}"
            publish_model(build_detector(128, channels), registry, name)
            raw = messages(drain_windows(3000, 128, channels), 128, channels)
            for rep in range(reps):
                order = [(a, p) for a in arms for p in partitions_tried]
                if rep % 2:
                    order.reverse()
                for arm, partitions in order:
                    log = Path(tmp) / f"{name}-{arm}-{partitions}-{rep}.log"
                    r, cores = rate(
                        broker.bootstrap, broker.pid, registry, name, raw, log, arm, partitions
                    )
                    shown = {k: round(v, 2) for k, v in cores.items()}
                    line = f"128x{channels} {arm:24s} {partitions} partitions {r:7.0f}/s {shown}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
