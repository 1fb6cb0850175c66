"""`make soak` (not in CI): an hour at half the worker's maximum rate, with promotions and kills.

1. Measure the worker's maximum rate on this stack: a burst of windows is drained as fast as
   the worker can, timed from the first to the last corrected window.
2. Feed windows at VAEWATCH_SOAK_RATE (default: 50% of that maximum) for VAEWATCH_SOAK_SECONDS
   (3600), promote a new model version every SOAK_SECONDS/12 and SIGKILL + restart the worker
   every SOAK_SECONDS/6. A checker consumes `corrected-windows` all along (reading an hour of
   output back at the end would take longer than the soak), so lag is known at every sample.
3. Stop feeding, wait until every window sent has been seen, report to benchmarks/results/soak.json:
   throughput per minute, worker RSS per worker lifetime and its trend, lag, broker RSS, lost
   (must be 0) and duplicate counts.

Window shape: 128 x VAEWATCH_SOAK_CHANNELS (8 by default, SKAB-like, ~20 KB of JSON).

Broker: an hour needs a real cluster (VAEWATCH_KAFKA_BOOTSTRAP_SERVERS). The embedded Tansu
broker's memory storage keeps every record in RAM (~20 GB after 8 minutes at 150/s of 128x38);
its s3 storage on moto keeps objects in RAM too; on s3rver (objects as files) it refuses
InitProducerId and its fetch rate fell from ~130 to well under 64 windows/s within minutes.
Without a cluster, run it short: VAEWATCH_SOAK_SECONDS=300.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from benchmarks.procstat import memory_mb
from kafkaio.client import assign_from_beginning
from schemas.messages import encode_window
from tests.integration.kafka_helpers import WorkerProcess, start_worker
from tests.model_factory import publish, train_tiny_detector
from vaecore import Detector

pytestmark = [pytest.mark.slow, pytest.mark.timeout(0)]
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
BURST = 3000
SAMPLE_EVERY_S = 5.0


class WindowFeed:
    """Sensor windows with distinct ids, sent at a set pace (or as fast as possible)."""

    def __init__(self, bootstrap: str, topic: str, channels: list[str]) -> None:
        self.topic = topic
        self.channels = channels
        self.sent = 0
        self._rng = np.random.default_rng(0)
        self._base = self._rng.random((128, len(channels)))
        self._start = datetime(2026, 1, 1, tzinfo=UTC)
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=20, batch_size=262144, acks="all"
        )

    def send_one(self) -> None:
        series = f"s{self.sent % 40}"
        noise = 0.01 * self._rng.standard_normal(self._base.shape)
        raw = encode_window(
            f"{series}/{self.sent}",
            series,
            self._start + timedelta(minutes=self.sent),
            60000,
            self.channels,
            self._base + noise,
        )
        self._producer.send(self.topic, key=series.encode(), value=raw)
        self.sent += 1

    def paced(self, rate: float, stop: threading.Event) -> None:
        began, first = time.perf_counter(), self.sent
        while not stop.is_set():
            self.send_one()
            ahead = (self.sent - first) / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
        self._producer.flush(60)

    def flush(self) -> None:
        self._producer.flush(120)

    def close(self) -> None:
        self._producer.flush(60)
        self._producer.close()


class OutputChecker(threading.Thread):
    """Consumes the corrected topic from the start: distinct ids, duplicates, per-minute counts."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: set[int] = set()
        self.records = 0
        self.per_minute: dict[int, int] = {}
        self.first_seen_at: float | None = None
        self._servers, self._topic = bootstrap, topic
        self._stop_event = threading.Event()
        self._began = time.monotonic()

    def run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self._servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        # the worker created its topics before it was assigned partitions, so they exist
        assign_from_beginning(consumer, self._topic, time.monotonic() + 600)
        while not self._stop_event.is_set():
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                now = time.monotonic()
                if self.first_seen_at is None:
                    self.first_seen_at = now
                minute = int((now - self._began) // 60)
                self.per_minute[minute] = self.per_minute.get(minute, 0) + len(batch)
                self.records += len(batch)
                for record in batch:
                    window_id = orjson.loads(record.value)["window_id"]
                    self.seen.add(int(window_id.rsplit("/", 1)[1]))
        consumer.close()

    def wait_for(self, count: int, timeout_s: float) -> float:
        """Seconds until `count` distinct windows were seen; raises on timeout."""
        began = time.monotonic()
        while len(self.seen) < count:
            if time.monotonic() - began > timeout_s:
                raise TimeoutError(f"saw {len(self.seen)} of {count} windows in {timeout_s}s")
            time.sleep(0.2)
        return time.monotonic() - began

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)


def measure_max_rate(feed: WindowFeed, checker: OutputChecker) -> float:
    """Windows/s the worker drains a backlog at: first to last corrected window of a burst."""
    for _ in range(BURST):
        feed.send_one()
    feed.flush()
    checker.wait_for(BURST, timeout_s=600)
    assert checker.first_seen_at is not None
    return BURST / (time.monotonic() - checker.first_seen_at)


def lifetime_rss(samples: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per worker lifetime: RSS median (second half), max, trend after its first minute."""
    out = []
    for life in sorted({s["life"] for s in samples}):
        points = [
            (s["t"], s["worker_rss_mb"])
            for s in samples
            if s["life"] == life and s["worker_rss_mb"] == s["worker_rss_mb"]
        ]
        if len(points) < 4:
            continue
        rss = [r for _, r in points]
        settled = [(t, r) for t, r in points if t >= points[0][0] + 60] or points
        t, r = np.array(settled).T
        slope = float(np.polyfit(t, r, 1)[0]) * 3600 if len(settled) > 2 else 0.0
        out.append(
            {
                "life": life,
                "median_mb": float(np.median(rss[len(rss) // 2 :])),
                "max_mb": max(rss),
                "trend_mb_per_hour": round(slope, 1),
            }
        )
    return out


def test_soak(
    kafka_bootstrap: str,
    topics: Any,
    registry: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    duration = float(os.environ.get("VAEWATCH_SOAK_SECONDS", "3600"))
    n_channels = int(os.environ.get("VAEWATCH_SOAK_CHANNELS", "8"))
    detector: Detector = train_tiny_detector(window=128, channels=n_channels)
    publish(detector, registry, "default")
    feed = WindowFeed(kafka_bootstrap, topics.input, list(detector.channels))
    checker = OutputChecker(kafka_bootstrap, topics.corrected)
    lives = 0
    started: list[WorkerProcess] = []

    def kill_started() -> None:
        for w in started:
            if w.proc.poll() is None:
                w.proc.kill()

    request.addfinalizer(kill_started)

    def new_worker() -> WorkerProcess:
        worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / f"w{lives}.log")
        started.append(worker)
        worker.wait_for("partitions_assigned", timeout=120)
        return worker

    worker = new_worker()
    checker.start()
    max_rate = measure_max_rate(feed, checker)
    rate = float(os.environ.get("VAEWATCH_SOAK_RATE") or 0.5 * max_rate)
    print(
        f"\nworker max rate {max_rate:.0f} windows/s; soaking at {rate:.0f}/s for {duration:.0f}s"
    )
    stop = threading.Event()
    feeder = threading.Thread(target=feed.paced, args=(rate, stop), daemon=True)
    feeder.start()
    began = time.monotonic()
    samples: list[dict[str, float]] = []
    kills = promotions = 0
    next_promote, next_kill = duration / 12, duration / 6
    while (elapsed := time.monotonic() - began) < duration:
        time.sleep(SAMPLE_EVERY_S)
        samples.append(
            {
                "t": round(elapsed),
                "life": lives,
                "sent": feed.sent,
                "seen": len(checker.seen),
                "lag": feed.sent - len(checker.seen),
                "worker_rss_mb": round(memory_mb(worker.proc.pid), 1),
            }
        )
        if elapsed >= next_promote:
            publish(detector, registry, "default")
            promotions += 1
            next_promote += duration / 12
        if elapsed >= next_kill and elapsed < duration - 60:
            worker.stop(signal.SIGKILL)
            kills += 1
            lives += 1
            worker = new_worker()
            next_kill += duration / 6
    stop.set()
    feeder.join(120)
    feed.close()
    drain_s = checker.wait_for(feed.sent, timeout_s=1800)
    assert worker.stop() == 0
    checker.stop()
    report = build_report(
        duration, max_rate, rate, feed, checker, samples, kills, promotions, drain_s
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    assert report["lost"] == 0
    # flat, not merely bounded: a later worker lifetime may not sit far above the first one
    medians = [life["median_mb"] for life in report["worker_rss_by_lifetime"]]
    assert max(medians) < 1.25 * medians[0] + 50, f"worker RSS grows across lifetimes: {medians}"


def build_report(
    duration: float,
    max_rate: float,
    rate: float,
    feed: WindowFeed,
    checker: OutputChecker,
    samples: list[dict[str, float]],
    kills: int,
    promotions: int,
    drain_s: float,
) -> dict[str, Any]:
    minutes = [checker.per_minute.get(m, 0) for m in range(max(checker.per_minute) + 1)]
    steady = minutes[2:-2] if len(minutes) > 6 else minutes
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "seconds": duration,
        "channels": len(feed.channels),
        "max_rate_windows_s": round(max_rate, 1),
        "rate_windows_s": round(rate, 1),
        "sent": feed.sent,
        "kills": kills,
        "promotions": promotions,
        "lost": feed.sent - len(checker.seen & set(range(feed.sent))),
        "duplicates": checker.records - len(checker.seen),
        "duplicate_rate": round((checker.records - len(checker.seen)) / max(1, feed.sent), 5),
        "drain_after_stop_s": round(drain_s, 1),
        "windows_per_minute": minutes,
        "windows_per_minute_steady": {
            "mean": float(np.mean(steady)),
            "min": float(min(steady)),
            "max": float(max(steady)),
            "cv": float(np.std(steady)) / max(1e-9, float(np.mean(steady))),
        },
        "lag_windows": {
            "median": float(np.median([s["lag"] for s in samples])),
            "p99": float(np.percentile([s["lag"] for s in samples], 99)),
            "max": max(s["lag"] for s in samples),
        },
        "worker_rss_by_lifetime": lifetime_rss(samples),
        "samples": samples,
    }
