"""make bench's worker drain measured two ways (issue 14), alternated, on one embedded
broker: the outputs read while the worker drains (the method before 2026-11-26 20:50Z) or
after it (the group's committed offsets polled meanwhile, `speed.drain_and_read`). The
default worker (scoring process), make bench's drains (8 x MAX_BATCH windows for 128 x 1
and 128 x 8, 3,000 for 128 x 38). Usage (repo root, machine idle):
  .venv/bin/python -m benchmarks.study.reader_ab 3
Prints windows/s and cores per drain, medians and their ratio; JSON on the last line."""
import json, statistics, sys, tempfile
from pathlib import Path

import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

if __name__ == "__main__":
    reps = int(sys.argv[1])
    out: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        assert broker.pid is not None
        for window, ch in speed.SHAPES:
            reg = Path(tmp) / f"reg{ch}"
            speed.publish_model(speed.build_detector(window, ch), reg, "m")
            raw = speed.messages(speed.drain_windows(3000, window, ch), window, ch)
            rates: dict[str, list[float]] = {"during": [], "after": []}
            for rep in range(reps):
                for mode in (["during", "after"] if rep % 2 == 0 else ["after", "during"]):
                    rate, _, cores = speed.worker_rate(
                        broker.bootstrap, reg, "m", raw, Path(tmp) / f"{ch}-{mode}.log",
                        broker.pid, read_during=mode == "during",
                    )
                    rates[mode].append(rate)
                    print(f"{window}x{ch} read {mode}: {rate:,.0f} windows/s",
                          {k: round(v, 2) for k, v in cores.items()}, flush=True)
            med = {m: statistics.median(r) for m, r in rates.items()}
            print(f"{window}x{ch}: median during {med['during']:,.0f}, after {med['after']:,.0f}"
                  f" (x{med['after'] / med['during']:.2f})", flush=True)
            out[f"{window}x{ch}"] = {m: [round(x) for x in r] for m, r in rates.items()}
    print(json.dumps(out))
