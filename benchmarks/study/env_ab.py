"""A/B of one worker environment variable (issue 14): the default worker (scoring process)
draining a pre-filled topic with VAR set to each value in turn (order rotated every
repetition), then the latency of each at one offered rate (half the first value's median
windows/s), on one embedded broker; drains as in batch_ab.py (128 x 1: N windows, 128 x 8:
N/2, 128 x 38: N/8). Usage (repo root, machine idle):
  .venv/bin/python -m benchmarks.study.env_ab 16000 3 1,8,38 VAR value1,value2 [LAT_REPS]
LAT_REPS (default 1): latency runs per value, alternated; the summary shows their medians.
Prints windows/s, cores and peak RSS per drain; medians, ratios to the first value and
p50/p99 latency per value at the end; JSON on the last line."""
import json, statistics, sys, tempfile
from pathlib import Path

import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

n, reps = int(sys.argv[1]), int(sys.argv[2])
shapes = [int(c) for c in sys.argv[3].split(",")]
sizes = sys.argv[5].split(",")
var = sys.argv[4]
lat_reps = int(sys.argv[6]) if len(sys.argv) > 6 else 1
out: dict[str, dict[str, object]] = {}
with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
    for ch in shapes:
        reg = Path(tmp) / f"reg{ch}"
        speed.publish_model(speed.build_detector(128, ch), reg, "m")
        raw = speed.messages(n if ch == 1 else n // 2 if ch < 38 else n // 8, 128, ch)
        rates: dict[str, list[float]] = {s: [] for s in sizes}
        rss: dict[str, float] = {}
        for rep in range(reps):
            order = sizes[rep % len(sizes):] + sizes[: rep % len(sizes)]
            for size in order:
                rate, peak, cores = speed.worker_rate(
                    broker.bootstrap, reg, "m", raw, Path(tmp) / f"{ch}-{size}.log", broker.pid,
                    {var: size},
                )
                rates[size].append(rate)
                rss[size] = max(rss.get(size, 0.0), peak)
                print(ch, size, round(rate), {k: round(v, 2) for k, v in cores.items()},
                      f"{peak:.0f} MB", flush=True)
        offered = statistics.median(rates[sizes[0]]) / 2
        runs: dict[str, list[tuple[float, float]]] = {s: [] for s in sizes}
        for rep in range(lat_reps):
            for size in sizes[rep % len(sizes):] + sizes[: rep % len(sizes)]:
                p50, p99 = speed.latency_at(
                    broker.bootstrap, reg, "m", raw[: min(len(raw), 1500)], offered,
                    Path(tmp) / f"{ch}-{size}-lat.log", {var: size},
                )
                runs[size].append((p50, p99))
                print(ch, size, f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms @ {offered:.0f}/s", flush=True)
        latency = {  # medians over the latency runs
            size: (statistics.median(p for p, _ in r), statistics.median(q for _, q in r))
            for size, r in runs.items()
        }
        base = statistics.median(rates[sizes[0]])
        out[f"128x{ch}"] = {
            size: {"windows_per_s": [round(r) for r in rates[size]],
                   "median_ratio": round(statistics.median(rates[size]) / base, 2),
                   "peak_rss_mb": round(rss[size]),
                   "latency_ms_p50_p99": latency[size], "offered_per_s": round(offered)}
            for size in sizes
        }
        for size in sizes:
            r = out[f"128x{ch}"][size]
            print(f"128x{ch} {var}={size}: median x{r['median_ratio']:.2f} of {sizes[0]}, "
                  f"latency {r['latency_ms_p50_p99']}, peak RSS {r['peak_rss_mb']} MB")
print(json.dumps(out))
