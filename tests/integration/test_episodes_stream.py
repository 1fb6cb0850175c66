"""Alert episodes through the real worker: one incident, one episode, across kills and rebalances.

A synthetic series: the model's own (normal) training data, cut into contiguous 64-step
windows, with three incidents of four windows each added on top (every channel shifted by
many standard deviations). Expected of the worker, whatever happens to it: exactly three
episodes per series, each opened once and resolved once, every repeated message identical
but for `emitted_at`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from schemas.messages import encode_window
from schemas.series_csv import read_series_csv
from tests.integration.kafka_helpers import produce, read_topic, start_worker, window_id
from tests.model_factory import SMD, publish
from vaecore import Detector, Thresholds

pytestmark = pytest.mark.integration
WINDOW = 64
INCIDENTS = ((10, 14), (25, 29), (44, 48))  # window index ranges [a, b)
START = datetime(2026, 11, 1, tzinfo=UTC)


def incident_series(detector: Detector) -> np.ndarray:
    table = read_series_csv(SMD / "train.csv")
    values = table.values[: (len(table.values) // WINDOW) * WINDOW].copy()
    for a, b in INCIDENTS:
        values[a * WINDOW : b * WINDOW] += 25.0 * detector.scaler.scale
    return values


@pytest.fixture
def episode_registry(tmp_path: Path, tiny_detector: Detector) -> Path:
    """The tiny model, tiling, with a window threshold between normal and incident windows."""
    detector = replace(tiny_detector, stride=WINDOW)
    values = incident_series(detector)
    windows = [values[i : i + WINDOW] for i in range(0, len(values), WINDOW)]
    scores = np.array([s.score for s in detector.score(windows)])
    bad = np.zeros(len(windows), dtype=bool)
    for a, b in INCIDENTS:
        bad[a:b] = True
    assert scores[bad].min() > 2 * scores[~bad].max(), "incidents must stand out"
    th = detector.active_thresholds
    threshold = float(np.sqrt(scores[bad].min() * scores[~bad].max()))
    root = tmp_path / "registry"
    publish(
        detector.with_thresholds(Thresholds(window=threshold, point=th.point, window_spread=1.0)),
        root,
        "default",
    )
    return root


def messages(series: str, values: np.ndarray, channels: tuple[str, ...]) -> list[Any]:
    out = []
    for i in range(len(values) // WINDOW):
        start = START + timedelta(minutes=i * WINDOW)
        raw = encode_window(
            f"{series}/{i}", series, start, 60000, list(channels), values[i * WINDOW :][:WINDOW]
        )
        out.append((series.encode(), raw))
    return out


def check_episodes(records: list[Any], names: list[str]) -> dict[str, int]:
    """Three opens and three resolves per series, stable ids, duplicates identical."""
    by_key: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    statuses: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in records:
        doc = orjson.loads(r.value)
        doc.pop("emitted_at")
        by_key[(doc["episode_id"], doc["seq"])].add(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
        statuses[doc["series_id"]][doc["status"]].add(doc["episode_id"])
    assert all(len(v) == 1 for v in by_key.values()), "a repeated episode message differs"
    for name in names:
        opened, resolved = statuses[name]["open"], statuses[name]["resolved"]
        assert len(opened) == 3, f"{name}: {len(opened)} episodes opened, want 3"
        assert resolved == opened, f"{name}: opened {opened} but resolved {resolved}"
    return {"messages": len(records), "distinct": len(by_key)}


def expected_count(names: list[str]) -> int:
    return 6 * len(names)  # at least an open and a resolved per incident


def read_episodes_when_done(bootstrap: str, topics: Any, n_windows: int, names: list[str]) -> Any:
    """Once every window has its corrected output, every episode message is out too."""
    read_topic(bootstrap, topics.corrected, n_windows, timeout_s=120, unique=window_id)
    return read_topic(bootstrap, topics.episodes, expected_count(names), 30, unique=distinct)


def produce_windows(bootstrap: str, topic: str, per_series: list[list[Any]], part: slice) -> None:
    """Windows `part` of every series, series after series (each keeps its order)."""
    produce(bootstrap, topic, [m for series in per_series for m in series[part]])


def distinct(record: Any) -> str:
    doc = orjson.loads(record.value)
    return f"{doc['episode_id']}/{doc['seq']}/{doc['status']}"


def test_three_incidents_give_three_episodes_opened_and_resolved_once(
    kafka_bootstrap: str,
    topics: Any,
    episode_registry: Path,
    tmp_path: Path,
    tiny_detector: Detector,
) -> None:
    values = incident_series(tiny_detector)
    names = ["pump-1"]
    produce(kafka_bootstrap, topics.input, messages(names[0], values, _channels()))
    worker = start_worker(kafka_bootstrap, topics, episode_registry, tmp_path / "w.log")
    try:
        n = len(values) // WINDOW
        records = read_episodes_when_done(kafka_bootstrap, topics, n, names)
    finally:
        assert worker.stop() == 0
    check_episodes(records, names)
    tail = subprocess.run(
        [sys.executable, "-m", "vaewatch", "tail", "--topic", topics.episodes],
        env={**os.environ, "VAEWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = tail.stdout.splitlines()
    assert len(lines) == len(records)
    assert sum(line.startswith("episode open ") for line in lines) == 3


def _channels() -> tuple[str, ...]:
    return read_series_csv(SMD / "train.csv").channels


def test_sigkills_at_random_moments_change_no_episode(
    kafka_bootstrap: str,
    topics: Any,
    episode_registry: Path,
    tmp_path: Path,
    tiny_detector: Detector,
) -> None:
    rng = random.Random(11)
    values = incident_series(tiny_detector)
    names = ["pump-1", "pump-2", "pump-3"]
    per_series = [messages(n, values, _channels()) for n in names]
    n = len(per_series[0])
    kills = 5
    cuts = sorted(rng.sample(range(4, n - 4), kills))
    for k, (lo, hi) in enumerate(zip([0, *cuts], cuts, strict=False)):
        produce_windows(kafka_bootstrap, topics.input, per_series, slice(lo, hi))
        worker = start_worker(
            kafka_bootstrap,
            topics,
            episode_registry,
            tmp_path / f"w{k}.log",
            VAEWATCH_MAX_BATCH="4",
            VAEWATCH_LOG_LEVEL="DEBUG",
        )
        worker.wait_for('"batch_processed"', timeout=60)
        time.sleep(rng.uniform(0.0, 0.3))
        worker.stop(signal.SIGKILL)
    produce_windows(kafka_bootstrap, topics.input, per_series, slice(cuts[-1], None))
    final = start_worker(kafka_bootstrap, topics, episode_registry, tmp_path / "final.log")
    try:
        records = read_episodes_when_done(kafka_bootstrap, topics, n * len(names), names)
    finally:
        assert final.stop() == 0
    seen = check_episodes(records, names)
    print(f"\nepisodes after {kills} SIGKILLs: {seen}")


def test_a_second_worker_joining_and_leaving_changes_no_episode(
    kafka_bootstrap: str,
    topics: Any,
    episode_registry: Path,
    tmp_path: Path,
    tiny_detector: Detector,
) -> None:
    values = incident_series(tiny_detector)
    names = [f"pump-{k}" for k in range(6)]  # keys spread over the 4 partitions
    per_series = [messages(n, values, _channels()) for n in names]
    n = len(per_series[0])
    thirds = [0, n // 3, 2 * n // 3, n]
    a = start_worker(kafka_bootstrap, topics, episode_registry, tmp_path / "a.log")
    b = None
    try:
        a.wait_for("partitions_assigned", timeout=60)
        produce_windows(kafka_bootstrap, topics.input, per_series, slice(0, thirds[1]))
        b = start_worker(kafka_bootstrap, topics, episode_registry, tmp_path / "b.log")
        b.wait_for("partitions_assigned", timeout=60)
        produce_windows(kafka_bootstrap, topics.input, per_series, slice(thirds[1], thirds[2]))
        time.sleep(2.0)
        assert b.stop() == 0  # leaves: a takes its partitions back, restoring their state
        produce_windows(kafka_bootstrap, topics.input, per_series, slice(thirds[2], None))
        records = read_episodes_when_done(kafka_bootstrap, topics, n * len(names), names)
        assert '"state_restored"' in b.log_text()
    finally:
        a.stop()
        if b is not None:
            b.stop()
    check_episodes(records, names)


def test_smoothed_scores_survive_sigkills_as_if_the_worker_never_stopped(
    kafka_bootstrap: str, topics: Any, tmp_path: Path, tiny_detector: Detector
) -> None:
    """The rolling mean's history is per-series state: a killed worker's successor restores
    it, so every window scores exactly what one uninterrupted pass over the series gives."""
    from vaecore.smoothing import trailing
    from worker.replay import load_replay_tables, series_windows

    k = 48
    smoothed = replace(tiny_detector, stride=tiny_detector.window, smoothing=k)
    root = tmp_path / "registry"
    publish(smoothed, root, "default")
    [table] = load_replay_tables([SMD], "test")
    windows = list(series_windows(table, 128, 128))
    [whole] = smoothed.score([table.values])
    expected = trailing(whole.raw_step, k)
    rng = random.Random(5)
    cuts = sorted(rng.sample(range(2, len(windows) - 2), 3))
    for n, (lo, hi) in enumerate(zip([0, *cuts], cuts, strict=False)):
        produce(
            kafka_bootstrap, topics.input, [(w.series_id.encode(), w.value) for w in windows[lo:hi]]
        )
        worker = start_worker(
            kafka_bootstrap, topics, root, tmp_path / f"w{n}.log", VAEWATCH_MAX_BATCH="2"
        )
        worker.wait_for('"partitions_assigned"', timeout=60)
        time.sleep(rng.uniform(0.5, 1.5))
        worker.stop(signal.SIGKILL)
    produce(
        kafka_bootstrap,
        topics.input,
        [(w.series_id.encode(), w.value) for w in windows[cuts[-1] :]],
    )
    final = start_worker(kafka_bootstrap, topics, root, tmp_path / "final.log")
    try:
        corrected = read_topic(
            kafka_bootstrap, topics.corrected, len(windows), timeout_s=120, unique=window_id
        )
    finally:
        assert final.stop() == 0
    starts = {w.window_id: w.start_row for w in windows}
    seen: dict[str, float] = {}
    for record in corrected:
        doc = orjson.loads(record.value)
        lo = starts[doc["window_id"]]
        assert doc["score"] == pytest.approx(expected[lo : lo + 128].max(), rel=1e-4, abs=1e-5)
        assert seen.setdefault(doc["window_id"], doc["score"]) == doc["score"]
    assert len(seen) == len(windows)


def test_the_state_topic_gets_a_partition_per_input_partition_or_the_worker_says_why(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    from kafkaio.client import ensure_topics, partition_counts
    from kafkaio.settings import kafka_settings

    settings = kafka_settings(kafka_bootstrap)
    ensure_topics(settings, [topics.input], 6)  # more than TOPIC_PARTITIONS (4 in tests)
    worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / "w.log")
    try:
        worker.wait_for('"partitions_assigned"', timeout=60)
    finally:
        assert worker.stop() == 0
    assert partition_counts(settings, [f"{topics.group}-state"]) == {f"{topics.group}-state": 6}

    other = replace(topics, group=f"{topics.group}-b")
    ensure_topics(settings, [f"{other.group}-state"], 2)  # made by hand, too small
    refused = start_worker(kafka_bootstrap, other, registry, tmp_path / "refused.log")
    assert refused.proc.wait(timeout=60) == 2
    last = refused.log_text().strip().splitlines()[-1]
    assert "VAEWATCH_STATE_TOPIC" in last and "2 partitions" in last and "(6)" in last
