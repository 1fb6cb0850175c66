"""A/B of the prefetching consumer (issue 14; not shipped: no gain): the default worker
(scoring process) with VAEWATCH_PREFETCH=true and =false alternated (order flipped every
repetition), on one embedded broker, draining a pre-filled topic. The setting exists only
with the patch applied (`git apply benchmarks/study/prefetch.patch`: `worker/prefetch.py`,
a thread that alone polls the consumer into a bounded buffer, and its tests). Usage (repo
root, machine idle; results of 2026-11-26 in benchmarks/results/prefetch-ab.json):
  .venv/bin/python -m benchmarks.study.prefetch_ab 4000 3 1,8,38
Prints windows/s and cores per run; the median per setting per shape at the end."""
import json, statistics, sys, tempfile
from pathlib import Path

import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

n, reps = int(sys.argv[1]), int(sys.argv[2])
shapes = [int(c) for c in sys.argv[3].split(",")]
rates: dict[tuple[int, str], list[float]] = {}
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    for ch in shapes:
        reg = Path(tmp) / f"reg{ch}"
        det = speed.build_detector(128, ch)
        speed.publish_model(det, reg, "m")
        raw = speed.messages(n if ch < 38 else n // 2, 128, ch)
        for rep in range(reps):
            order = ("true", "false") if rep % 2 == 0 else ("false", "true")
            for mode in order:
                rate, rss, cores = speed.worker_rate(
                    broker.bootstrap, reg, "m", raw, Path(tmp) / f"{ch}-{mode}.log", broker.pid,
                    {"VAEWATCH_PREFETCH": mode},
                )
                rates.setdefault((ch, mode), []).append(rate)
                print(ch, "prefetch" if mode == "true" else "plain", round(rate),
                      {k: round(v, 2) for k, v in cores.items()}, flush=True)
    out = {f"128x{ch}": {m: [round(r) for r in rates[(ch, m)]] for m in ("true", "false")} for ch in shapes}
    for ch in shapes:
        a, b = statistics.median(rates[(ch, "true")]), statistics.median(rates[(ch, "false")])
        print(f"128x{ch}: prefetch {a:.0f} vs plain {b:.0f} windows/s: x{a / b:.2f}")
    print(json.dumps(out))
