"""How long restoring one partition's per-series state takes (docs/state.md, `make bench-state`).

Builds the changelog of N series (default 10,000) with the worker's own code: per series a
`SeriesStates.touch`, a score tail of k-1+window float32 steps (`ScoreHistory.restore`), the
episode rules applied to its windows (`worker.episodes.apply`; `--open-share` of the series
have anomalous windows and so an open episode), and `SeriesStates.take_records` for the
bytes, exactly as the loop writes them (each record with its `before` and `now`). A warm-up
batch first, so every measured record has both. `--records-per-series` batches are
written (1: a compacted log; 5: an uncompacted one where each series was seen five times).

On the embedded broker (Tansu), one partition: writes the records with the worker's producer
configuration, then times what a worker does when that partition is assigned:
`StateChangelog.read(partition)` (read) and `SeriesStates.restore_partition` (install).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from dataclasses import dataclass

import numpy as np

from kafkaio.records import OutRecord
from worker.episodes import EpisodeRules, ScoredWindow, apply
from worker.state import SeriesStates

TOPIC = "bench-state"
STEP_MS = 60_000  # one step per minute


@dataclass(frozen=True)
class Shape:
    """What each series' state holds."""

    k: int = 128  # smoothing steps: the tail keeps k-1 steps before the window...
    window: int = 128  # ...plus the window's own steps
    channels: int = 38  # channel scores per anomalous window (SMD has 38)
    open_share: float = 0.1  # series with an open episode


def _window(series: str, i: int, anomalous: bool, shape: Shape, rng: random.Random) -> ScoredWindow:
    start = i * shape.window * STEP_MS
    channels = {f"ch{c}": rng.random() * 5 for c in range(shape.channels)} if anomalous else {}
    return ScoredWindow(
        window_id=f"{series}:{start}",
        start_ms=start,
        end_ms=start + shape.window * STEP_MS,
        is_anomaly=anomalous,
        score=rng.random() * 10 if anomalous else rng.random(),
        severity=rng.choice(["low", "medium", "high", "critical"]) if anomalous else "low",
        channel_scores=channels,
        event_id=f"evt-{series}-{i}",
        model=("default", "v1"),
    )


def make_records(
    n: int, records_per_series: int = 1, shape: Shape = Shape(), seed: int = 0
) -> list[OutRecord]:
    """The changelog of one partition: `records_per_series` batches over all `n` series,
    after a warm-up batch (not returned) that gives every series a state to be `before`."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    rules = EpisodeRules()
    states = SeriesStates(rules=rules)
    tail = shape.k - 1 + shape.window
    series = [f"machine-{i // 38}-{i % 38}.sensor-{i:06d}" for i in range(n)]
    opens = {s for s in series if rng.random() < shape.open_share}
    out: list[OutRecord] = []
    offset = 0
    window_no = 0
    # warm-up: open_min_windows windows so the anomalous series open their episode
    for batch in range(records_per_series + 1):
        windows = rules.open_min_windows if batch == 0 else 1
        for s in series:
            states.touch(s, 0, offset)
            offset += windows
            for j in range(windows):
                w = _window(s, window_no + j, s in opens, shape, rng)
                apply(states.episode_state(s), s, w, rules)
                states.saw(s, w.end_ms)
            end = (window_no + windows) * shape.window
            states.history.restore(s, end, np_rng.random(tail, dtype=np.float32))
        window_no += windows
        records = states.take_records(TOPIC)
        if batch > 0:
            out += records
    return out


def install(records: list[tuple[bytes, bytes | None]], position: int) -> tuple[SeriesStates, int]:
    """What the worker's scoring thread does with a partition's changelog."""
    states = SeriesStates()
    return states, states.restore_partition(0, records, position)


def size_mb(records: list[OutRecord]) -> float:
    return sum(len(r.key or b"") + len(r.value or b"") for r in records) / 1e6


def _measure(n: int, per_series: int, shape: Shape, repeats: int) -> dict[str, float]:
    from kafkaio.client import ensure_topics, make_producer
    from worker.broker import EmbeddedBroker
    from worker.kafka_edge import StateChangelog
    from worker.settings import WorkerSettings

    records = make_records(n, per_series, shape)
    position = 10**12  # past every input offset: every batch committed, so `now` wins
    with EmbeddedBroker() as broker:
        settings = WorkerSettings(kafka_bootstrap_servers=broker.bootstrap, group_id="bench")
        ensure_topics(settings, [TOPIC], 1, compacted=[TOPIC])
        producer = make_producer(settings)
        started = time.perf_counter()
        for r in records:
            producer.send(r.topic, key=r.key, value=r.value, partition=r.partition)
        producer.flush()
        write_s = time.perf_counter() - started
        producer.close()
        best: dict[str, float] = {}
        for _ in range(repeats):
            gc.collect()
            changelog = StateChangelog(settings, TOPIC, timeout_s=600)
            started = time.perf_counter()
            read = changelog.read(0)
            read_s = time.perf_counter() - started
            changelog.close()
            started = time.perf_counter()
            states, installed = install(read, position)
            install_s = time.perf_counter() - started
            if len(read) != len(records) or installed != n:
                raise SystemExit(f"read {len(read)} of {len(records)}, installed {installed}")
            run = {"read_s": read_s, "install_s": install_s, "total_s": read_s + install_s}
            if not best or run["total_s"] < best["total_s"]:
                best = {**run, "open": float(states.open_episodes())}
    return {
        "series": n,
        "records": len(records),
        "mb": size_mb(records),
        "write_s": write_s,
        **best,
        "series_per_s": n / best["total_s"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make bench-state", description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=10_000, help="series in the partition")
    p.add_argument(
        "--records-per-series",
        type=int,
        nargs="+",
        default=[1, 5],
        help="changelog records per series (1 = compacted, 5 = uncompacted)",
    )
    p.add_argument("--k", type=int, default=Shape.k, help="smoothing steps (tail = k-1+window)")
    p.add_argument("--window", type=int, default=Shape.window, help="steps per window")
    p.add_argument("--channels", type=int, default=Shape.channels, help="channels per window")
    p.add_argument("--open-share", type=float, default=Shape.open_share, help="series open")
    p.add_argument("--repeats", type=int, default=1, help="reads per case (the fastest counts)")
    args = p.parse_args(argv)
    shape = Shape(args.k, args.window, args.channels, args.open_share)
    print(
        f"state restore, one partition, {args.series} series, tail {shape.k - 1}+{shape.window} "
        f"float32 steps, {shape.open_share:.0%} with an open episode ({shape.channels} channels)"
    )
    header = "records/series  records     MB  read s  install s  total s  series/s  open"
    print(header)
    for per_series in args.records_per_series:
        m = _measure(args.series, per_series, shape, args.repeats)
        print(
            f"{per_series:>14}  {m['records']:>7}  {m['mb']:>5.1f}  {m['read_s']:>6.2f}  "
            f"{m['install_s']:>9.2f}  {m['total_s']:>7.2f}  {m['series_per_s']:>8.0f}  "
            f"{m['open']:>4.0f}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
