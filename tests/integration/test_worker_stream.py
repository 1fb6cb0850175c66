"""The worker against a real broker: outputs, dead letters, shutdown, scale-out, hot reload."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from modelstore.artifact import load_artifact
from modelstore.registry import Registry
from schemas.messages import decode_window
from tests.integration.kafka_helpers import produce, read_topic, start_worker, window_id
from tests.model_factory import SMD, publish
from vaecore import Detector
from worker.replay import replay_series, series_windows
from worker.settings import settings_from_cli

pytestmark = pytest.mark.integration

BAD_MESSAGES = {
    "not_json": b"{definitely not json",
    "wrong_version": b'{"schema_version": 2}',
    "non_finite": b'{"schema_version": 1, "window_id": "w", "series_id": "s", '
    b'"start": "2026-11-24T03:00:00Z", "interval_ms": 1000, "channels": ["a"], "values": [[NaN]]}',
    "channels_mismatch": b'{"schema_version": 1, "window_id": "w", "series_id": "s", '
    b'"start": "2026-11-24T03:00:00Z", "interval_ms": 1000, "channels": ["a"], "values": [[1.0]]}',
}


ADDED_ID = "smd/machine-1-2/with-added-fields"
ADDED_FIELDS = {"site": "plant-3", "firmware": {"version": [2, 1], "beta": False}}


def with_added_fields() -> bytes:
    """A valid window whose producer added top-level fields this version does not know."""
    from worker.replay import load_replay_tables

    [table] = load_replay_tables([SMD], "test")
    doc = orjson.loads(next(iter(series_windows(table, 128, 128))).value)
    return orjson.dumps({**doc, "window_id": ADDED_ID, **ADDED_FIELDS})


def replay(bootstrap: str, topic: str, stride: int, limit: int | None = None) -> int:
    from worker.replay import load_replay_tables

    tables = load_replay_tables([SMD], "test")
    settings = settings_from_cli({"kafka_bootstrap_servers": bootstrap})
    return replay_series(settings, tables, topic, window=128, stride=stride, limit=limit)


def window_ids(records: list[Any]) -> Counter[str]:
    return Counter(orjson.loads(r.value)["window_id"] for r in records)


def test_every_window_once_events_and_dead_letters_with_reasons(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    secret = "s3cr3t-never-logged"
    worker = start_worker(
        kafka_bootstrap, topics, registry, tmp_path / "worker.log", VAEWATCH_SASL_PASSWORD=secret
    )
    try:
        sent = replay(kafka_bootstrap, topics.input, stride=32)
        produce(kafka_bootstrap, topics.input, [(b"bad", raw) for raw in BAD_MESSAGES.values()])
        produce(kafka_bootstrap, topics.input, [(b"smd/machine-1-2", with_added_fields())])
        sent += 1
        corrected = read_topic(kafka_bootstrap, topics.corrected, sent, timeout_s=90)
        dlq = read_topic(kafka_bootstrap, topics.dlq, len(BAD_MESSAGES), timeout_s=30)
        events = read_topic(kafka_bootstrap, topics.events, 1, timeout_s=10)
    finally:
        assert worker.stop() == 0
    assert secret not in worker.log_text(), "a secret reached the logs"
    assert "sasl_password" in worker.log_text()  # the settings were logged, masked
    counts = window_ids(corrected)
    assert len(counts) == sent
    assert set(counts.values()) == {1}, "happy path: every window exactly once"
    [added] = [doc for r in corrected if (doc := orjson.loads(r.value))["window_id"] == ADDED_ID]
    assert {k: added[k] for k in ADDED_FIELDS} == ADDED_FIELDS, "unknown fields not passed through"
    reasons = {dict(r.headers)["vaewatch.error.class"].decode(): r for r in dlq}
    assert set(reasons) == set(BAD_MESSAGES)
    for kind, record in reasons.items():
        assert record.value == BAD_MESSAGES[kind]
        assert dict(record.headers)["vaewatch.error.reason"]
    # the labelled anomaly at test rows ~227-286 of the sample (4629-4688 of the source)
    flagged = {orjson.loads(r.value)["window_id"] for r in events}
    assert flagged, "no anomaly event at all"
    event = orjson.loads(events[0].value)
    assert event["anomalous_points"] or event["score"] > event["threshold"]
    assert all(p["channel"].startswith("dim_") for p in event["anomalous_points"])


def test_published_scores_equal_offline_scoring(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / "worker.log")
    try:
        sent = replay(kafka_bootstrap, topics.input, stride=64, limit=12)
        corrected = read_topic(kafka_bootstrap, topics.corrected, sent, timeout_s=90)
    finally:
        worker.stop()
    offline = load_artifact(Registry(registry).resolve("default").path, "cpu")
    from worker.replay import load_replay_tables

    [table] = load_replay_tables([SMD], "test")
    by_id = {w.window_id: w.value for w in series_windows(table, 128, 64)}
    for record in corrected:
        doc = orjson.loads(record.value)
        window = decode_window(by_id[doc["window_id"]])
        [expected] = offline.score([window.values])
        assert doc["score"] == pytest.approx(expected.score, rel=1e-5, abs=1e-5)


def test_sigterm_mid_stream_loses_nothing(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    sent = replay(kafka_bootstrap, topics.input, stride=2)
    worker = start_worker(
        kafka_bootstrap, topics, registry, tmp_path / "w1.log", VAEWATCH_MAX_BATCH="16"
    )
    worker.wait_for("partitions_assigned", timeout=30)
    time.sleep(1.0)
    assert worker.stop(signal.SIGTERM) == 0
    first = read_topic(kafka_bootstrap, topics.corrected, 1, timeout_s=10)
    assert 0 < len(first) < sent, "SIGTERM should land mid-stream"
    again = start_worker(kafka_bootstrap, topics, registry, tmp_path / "w2.log")
    try:
        again.wait_for("partitions_assigned", timeout=30)
        corrected = read_topic(
            kafka_bootstrap, topics.corrected, sent, timeout_s=90, unique=window_id
        )
    finally:
        assert again.stop() == 0
    counts = window_ids(corrected)
    assert len(counts) == sent, f"lost {sent - len(counts)} windows"


def produce_many_series(bootstrap: str, topic: str, round_tag: str, n_series: int = 8) -> set[str]:
    """The sample's windows under n_series distinct keys, so every partition carries data."""
    from worker.replay import load_replay_tables

    [table] = load_replay_tables([SMD], "test")
    windows = list(series_windows(table, 128, 64))
    messages, ids = [], set()
    for k in range(n_series):
        series = f"{round_tag}-s{k}"
        for i, w in enumerate(windows):
            doc = orjson.loads(w.value)
            doc["series_id"], doc["window_id"] = series, f"{series}/{i}"
            messages.append((series.encode(), orjson.dumps(doc)))
            ids.add(doc["window_id"])
    produce(bootstrap, topic, messages)
    return ids


def test_two_workers_share_partitions_and_the_survivor_takes_over(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    a = start_worker(kafka_bootstrap, topics, registry, tmp_path / "a.log")
    a.wait_for("partitions_assigned", timeout=30)
    b = start_worker(kafka_bootstrap, topics, registry, tmp_path / "b.log")
    try:
        b.wait_for("partitions_assigned", timeout=40)
        first = produce_many_series(kafka_bootstrap, topics.input, "r1")
        read_topic(kafka_bootstrap, topics.corrected, len(first), timeout_s=90, unique=window_id)
        assert a.stop() == 0  # leaves the group: b takes over a's partitions
        second = produce_many_series(kafka_bootstrap, topics.input, "r2")
        corrected = read_topic(
            kafka_bootstrap, topics.corrected, len(first | second), timeout_s=90, unique=window_id
        )
        assert b.log_text().count('"partitions_assigned"') >= 2, "b never took over"
    finally:
        a.stop()
        b.stop()
    seen = {orjson.loads(r.value)["window_id"] for r in corrected}
    assert seen == first | second
    partitions = {r.partition for r in corrected}
    assert len(partitions) > 1, "the keys should spread over several partitions"


def test_alias_promotion_switches_the_model_without_restart(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path, tiny_detector: Detector
) -> None:
    worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / "worker.log")
    try:
        first = replay(kafka_bootstrap, topics.input, stride=64, limit=5)
        read_topic(kafka_bootstrap, topics.corrected, first, timeout_s=90)
        version = publish(tiny_detector, registry, "default", promote=True)
        worker.wait_for('"model_loaded"', timeout=40)
        worker.wait_for(f'"version": "{version}"', timeout=40)
        second = replay(kafka_bootstrap, topics.input, stride=64, limit=5)
        corrected = read_topic(kafka_bootstrap, topics.corrected, first + second, timeout_s=60)
    finally:
        assert worker.stop() == 0
    versions = [orjson.loads(r.value)["model"]["version"] for r in corrected]
    assert versions[:first] == ["1"] * first
    assert versions[-second:] == [version] * second


def test_a_broken_new_version_is_refused_and_the_old_one_keeps_serving(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path, tiny_detector: Detector
) -> None:
    worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / "worker.log")
    try:
        worker.wait_for('"model_loaded"', timeout=30)
        version = publish(tiny_detector, registry, "default", promote=False)
        weights = registry / "default" / version / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-10] ^= 0xFF
        weights.write_bytes(bytes(data))
        Registry(registry).promote("default", version)
        worker.wait_for('"model_refused"', timeout=40)
        sent = replay(kafka_bootstrap, topics.input, stride=64, limit=4)
        corrected = read_topic(kafka_bootstrap, topics.corrected, sent, timeout_s=60)
    finally:
        assert worker.stop() == 0
    assert {orjson.loads(r.value)["model"]["version"] for r in corrected} == {"1"}
    assert "checksum mismatch" in worker.log_text()
    assert np.isfinite([orjson.loads(r.value)["score"] for r in corrected]).all()


@pytest.mark.parametrize("kernel", ["mean", "scales"])
def test_streamed_window_scores_equal_the_backfill_of_the_series(
    kafka_bootstrap: str, topics: Any, tmp_path: Path, tiny_detector: Detector, kernel: str
) -> None:
    """The smoothed score carries across windows: the stream matches `score` of the CSV."""
    from dataclasses import replace

    from training.backfill import score_table
    from vaecore.smoothing import Scale
    from worker.replay import load_replay_tables

    k = 48
    scales = (Scale(24, 2, 0.5, 2.0), Scale(48, 2, 0.3, 1.0)) if kernel == "scales" else ()
    smoothed = replace(tiny_detector, stride=tiny_detector.window, smoothing=k, scales=scales)
    root = tmp_path / "registry"
    publish(smoothed, root, "default")
    worker = start_worker(kafka_bootstrap, topics, root, tmp_path / "worker.log")
    try:
        sent = replay(kafka_bootstrap, topics.input, stride=128)  # contiguous windows
        corrected = read_topic(kafka_bootstrap, topics.corrected, sent, timeout_s=90)
    finally:
        worker.stop()
    [table] = load_replay_tables([SMD], "test")
    offline = load_artifact(Registry(root).resolve("default").path, "cpu")
    backfill = score_table(offline, table, correct=False).step  # the centred view
    [whole] = offline.score([table.values])
    stream_view = offline.smoother.trailing(whole.raw_step)  # as the stream sees them
    if not scales:  # one rolling mean: the backfill is the same numbers, centred
        lead = (k - 1) // 2
        np.testing.assert_allclose(backfill[: len(backfill) - lead], stream_view[lead:], rtol=1e-12)
    starts = {w.window_id: w.start_row for w in series_windows(table, 128, 128)}
    assert len(corrected) == sent
    for record in corrected:
        doc = orjson.loads(record.value)
        lo = starts[doc["window_id"]]
        expected = stream_view[lo : lo + 128].max()
        assert doc["score"] == pytest.approx(expected, rel=1e-4, abs=1e-5), doc["window_id"]
