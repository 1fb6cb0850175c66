"""A/B of `VAEWATCH_SCORER` = thread vs process (issue 14), alternated in one run.

For each shape (128x1, 128x8, 128x38) on one embedded broker: the CPU bound of `make bench`
(relay + broker, codec, score + correct CPU seconds per window, measured here), then the
worker draining a pre-filled topic with the scoring thread and with the scoring process,
alternately (thread first in odd repetitions, process first in even ones, so neither
always runs on a warmer machine), and p50/p99 latency of both at one offered rate: half the
thread mode's median windows/s (the same load for both). Cores used include the scoring
process. The load average before each shape is recorded: this machine is shared.

    .venv/bin/python -m benchmarks.scorer_ab [--windows 4000] [--reps 3]

Results: `benchmarks/results/scorer-ab.json` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.speed import (
    RESULTS,
    SHAPES,
    build_detector,
    codec_us,
    compute_ceiling,
    cpu_bound,
    fill_topic,
    io_ceiling,
    latency_at,
    messages,
    publish_model,
    scratch_tag,
    synthetic,
    worker_rate,
)

MODES = ("thread", "process")
SPIN = (
    "import time\nt0, c0 = time.time(), time.process_time()\n"
    "while time.time() - t0 < 1.0:\n    pass\nprint(time.process_time() - c0)\n"
)


def parallel_capacity() -> float:
    """Cores two busy-loop processes of this session get at once (~2.0 on a quiet 2-core
    machine). Not the load average: with autogroup scheduling (Linux's default for
    sessions) a nice-19 job of another session still takes its fair share, a whole core."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    return sum(float(p.communicate()[0]) for p in spinners)


def _bound(
    bootstrap: str, broker_pid: int, detector: Any, raw: list[bytes], shape: tuple[int, int]
) -> dict[str, Any]:
    """The CPU bound's parts, measured as `make bench` measures them."""
    window, channels = shape
    row: dict[str, Any] = {"codec_us_per_window": codec_us(raw[:1000], detector)}
    # one torch thread, the worker's own (auto on 2 CPUs): `make bench` uses all cores, and
    # two threads spin at every barrier when another job holds a core, which inflated the
    # CPU seconds per window 4-9x in a trial run beside a nice-19 job
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    row["compute_ceiling"], _, compute_cpu = compute_ceiling(detector, window, channels)
    torch.set_num_threads(threads)
    row["compute_cpu_ms_per_window"] = compute_cpu * 1000
    with scratch_tag(bootstrap) as tag:
        fill_topic(bootstrap, f"relay-{tag}", raw)
        row["io_ceiling"], io_cpu = io_ceiling(bootstrap, f"relay-{tag}", len(raw), broker_pid)
    row["io_cpu_ms_per_window"] = io_cpu * 1000
    row["cpu_bound"] = cpu_bound(row, os.cpu_count() or 1)
    return row


def transfer_cost(detector: Any, shape: tuple[int, int], batch: int = 256) -> dict[str, float]:
    """The scoring process's own cost per window, batches of `batch`: the parent's CPU to
    send (pickle + write) and to receive (read + unpickle + unpack), and the round trip's
    wall time beyond the same computation done here."""
    from worker.scorer_process import ScorerProcess, compute_stateless

    window, channels = shape
    windows = [w.astype(np.float64) for w in synthetic(batch, window, channels, seed=4)]
    windows[0][3, 0] = np.nan
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    scorer = ScorerProcess(1)
    try:
        scorer.submit(detector, windows)()  # model sent, child warm
        send = receive = wall = local = 0.0
        reps = 5
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.thread_time()
            pending = scorer.submit(detector, windows)
            c1 = time.thread_time()
            pending()
            receive += time.thread_time() - c1
            send += c1 - c0
            wall += time.perf_counter() - t0
            t1 = time.perf_counter()
            compute_stateless(detector, windows)
            local += time.perf_counter() - t1
    finally:
        scorer.close()
        torch.set_num_threads(threads)
    per = 1e6 / (reps * batch)
    return {
        "parent_send_cpu_us": send * per,
        "parent_receive_cpu_us": receive * per,
        "round_trip_us": wall * per,
        "local_compute_us": local * per,
    }


def _shape(
    bootstrap: str, broker_pid: int, registry: Path, tmp: Path, shape: tuple[int, int], args: Any
) -> dict[str, Any]:
    window, channels = shape
    name = f"ab-{window}x{channels}"
    detector = build_detector(window, channels)
    publish_model(detector, registry, name)
    raw = messages(args.windows, window, channels)
    row: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    row["parallel_capacity_before"] = parallel_capacity()
    row |= _bound(bootstrap, broker_pid, detector, raw, shape)
    row["transfer_per_window"] = transfer_cost(detector, shape)
    print(f"  transfer per window: {_fmt(row['transfer_per_window'])}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for rep in range(args.reps):
        for mode in MODES if rep % 2 == 0 else reversed(MODES):
            rate, rss, cores = worker_rate(
                bootstrap,
                registry,
                name,
                raw,
                tmp / f"{name}-{mode}-{rep}.log",
                broker_pid,
                {"VAEWATCH_SCORER": mode},
            )
            runs[mode].append({"windows_per_s": rate, "peak_rss_mb": rss, "cores": cores})
            print(f"  {name} {mode:<8} rep {rep}: {rate:7.0f}/s cores {_fmt(cores)}", flush=True)
        print(f"  capacity now {parallel_capacity():.2f} cores", flush=True)
    for mode in MODES:
        rates = [r["windows_per_s"] for r in runs[mode]]
        row[mode] = {
            "runs": runs[mode],
            "median_windows_per_s": statistics.median(rates),
            "vs_cpu_bound": statistics.median(rates) / row["cpu_bound"],
        }
    if not args.no_latency:
        offered = row["thread"]["median_windows_per_s"] / 2
        row["latency_offered_per_s"] = offered
        for mode in MODES:
            p50, p99 = latency_at(
                bootstrap,
                registry,
                name,
                raw[: min(len(raw), int(offered * 4))],
                offered,
                tmp / f"{name}-{mode}-lat.log",
                {"VAEWATCH_SCORER": mode},
            )
            row[mode]["latency_ms"] = {"p50": p50, "p99": p99}
    row["load_average_after"] = os.getloadavg()[0]
    row["parallel_capacity_after"] = parallel_capacity()
    return row


def _fmt(cores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in cores.items())


def print_table(results: dict[str, Any]) -> None:
    print(f"\nscorer A/B — {results['machine']}, {results['date']}")
    print(
        f"{'shape':<12}{'cpu bound':>10}{'mode':>9}{'median/s':>10}{'/bound':>8}"
        f"{'runs/s':>24}{'worker+scorer cores':>21}{'p50/p99 ms @50%':>18}"
    )
    for name, row in results["shapes"].items():
        for mode in MODES:
            m = row[mode]
            runs = " ".join(f"{r['windows_per_s']:.0f}" for r in m["runs"])
            used = statistics.median(
                r["cores"].get("worker", 0) + r["cores"].get("scorer", 0) for r in m["runs"]
            )
            lat = m.get("latency_ms", {})
            shown = f"{lat['p50']:.0f}/{lat['p99']:.0f}" if lat else "-"
            print(
                f"{name:<12}{row['cpu_bound']:>10.0f}{mode:>9}{m['median_windows_per_s']:>10.0f}"
                f"{m['vs_cpu_bound']:>8.2f}{runs:>24}{used:>21.2f}{shown:>18}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=4000, help="windows per drain")
    parser.add_argument("--reps", type=int, default=3, help="drains per mode and shape")
    parser.add_argument("--shapes", default="1,8,38", help="channels of the 128-step shapes")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    args = parser.parse_args()
    from worker.broker import EmbeddedBroker

    wanted = {int(c) for c in args.shapes.split(",")}
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, torch {torch.__version__}",
        "shapes": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        assert broker.pid is not None
        for shape in [s for s in SHAPES if s[1] in wanted]:
            print(f"== {shape[0]}x{shape[1]}", flush=True)
            row = _shape(broker.bootstrap, broker.pid, Path(tmp) / "reg", Path(tmp), shape, args)
            results["shapes"][f"{shape[0]}x{shape[1]}"] = row
    results["seconds"] = round(time.monotonic() - started)
    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scorer-ab.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"written {RESULTS / 'scorer-ab.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
