"""Do the two cores give twice one core? (issue 14) The CPU bound divides 2 cores by CPU per
window measured with the rest of the machine idle. This runs the worker's non-relay work
(`ideal_overlap.load`: decode, score, correct, encode in batches of 256, one torch thread)
flat out for 8 s: alone, beside a pure-Python busy loop, and beside a second copy of itself;
and the bare relay's work (a kafka-python producer+consumer loop is not needed: the busy
loop stands in for any other busy core). Prints windows/s and CPU ms per window per case.
Usage: .venv/bin/python -m benchmarks.study.interference 1,8,38"""

import json
import multiprocessing as mp
import sys
import time
from typing import Any

from benchmarks.study.ideal_overlap import load


def spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def run(channels: int, loads: int, spinners: int) -> list[dict[str, float]]:
    ctx = mp.get_context("spawn")
    stop, q = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(loads)]
    ps = [ctx.Process(target=load, args=(channels, 1e9, r, stop, q)) for r in readies]
    ps += [ctx.Process(target=spin, args=(stop,)) for _ in range(spinners)]
    for p in ps:
        p.start()
    for r in readies:
        r.wait(120)
    time.sleep(8)
    stop.set()
    res = [q.get(timeout=60) for _ in range(loads)]
    for p in ps:
        p.join(30)
    return [{"rate": r["load_rate"], "cpu_ms_per_window": r["load_cores"] / r["load_rate"] * 1000} for r in res]


if __name__ == "__main__":
    out = {}
    for ch in [int(c) for c in sys.argv[1].split(",")]:
        row = {}
        for name, loads, spinners in (("alone", 1, 0), ("beside a busy loop", 1, 1), ("two copies", 2, 0), ("alone again", 1, 0)):
            row[name] = run(ch, loads, spinners)
            print(f"128x{ch} {name}: " + ", ".join(f"{r['rate']:.0f} w/s at {r['cpu_ms_per_window']:.3f} ms" for r in row[name]), flush=True)
        out[f"128x{ch}"] = row
    print(json.dumps(out))
