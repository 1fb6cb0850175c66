"""Two against three worker processes (VAEWATCH_PROCESSES pinned) on 128 x 1, 2 CPUs, 6 input
partitions, 8,000 windows, alternated, 3 runs each; joined_rate (start on the empty topic,
fill once every process has partitions). Results: benchmarks/results/processes-partitions.txt."""
import tempfile
from pathlib import Path
from benchmarks.speed import build_detector, drain_windows, joined_rate, messages, publish_model
from worker.broker import EmbeddedBroker
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    reg = Path(tmp) / "r"
    publish_model(build_detector(128, 1), reg, "m")
    raw = messages(drain_windows(8000, 128, 1), 128, 1)
    for rep in range(3):
        for n in ((2, 3) if rep % 2 == 0 else (3, 2)):
            r, rss, cores = joined_rate(broker.bootstrap, reg, "m", raw, Path(tmp)/f"{n}-{rep}.log", broker.pid, {"VAEWATCH_PROCESSES": str(n)}, n, 6)
            print(n, round(r), round(rss), {k: round(v,2) for k,v in cores.items()}, flush=True)
