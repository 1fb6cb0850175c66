"""Faults and bad input against the real broker: SIGKILLs lose nothing, fuzz never kills."""

from __future__ import annotations

import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from tests.integration.kafka_helpers import produce, read_topic, start_worker, window_id
from tests.integration.test_worker_stream import replay

pytestmark = pytest.mark.integration

BAD = [b"", b"null", b"[]", b'{"schema_version": 1}', b"\xff\xfe garbage", b'{"a": ' * 200]


def test_sigkill_at_random_moments_loses_nothing(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    rng = random.Random(7)
    sent = replay(kafka_bootstrap, topics.input, stride=4)
    produce(kafka_bootstrap, topics.input, [(b"bad", raw) for raw in BAD])
    kills = 2
    for k in range(kills):
        worker = start_worker(
            kafka_bootstrap,
            topics,
            registry,
            tmp_path / f"w{k}.log",
            VAEWATCH_MAX_BATCH="8",
            VAEWATCH_LOG_LEVEL="DEBUG",
        )
        # mid-stream on any machine: after its first committed batch, not after a fixed delay
        worker.wait_for('"batch_processed"', timeout=60)
        time.sleep(rng.uniform(0.0, 0.4))
        worker.stop(signal.SIGKILL)
    before = read_topic(kafka_bootstrap, topics.corrected, 1, timeout_s=5)
    assert 0 < len(before) < sent, "the kills should land mid-stream"
    final = start_worker(kafka_bootstrap, topics, registry, tmp_path / "final.log")
    try:
        corrected = read_topic(
            kafka_bootstrap, topics.corrected, sent, timeout_s=120, unique=window_id
        )
        dead = read_topic(kafka_bootstrap, topics.dlq, len(BAD), timeout_s=30)
        events = read_topic(kafka_bootstrap, topics.events, 0, timeout_s=3)
    finally:
        assert final.stop() == 0
    ids = [orjson.loads(r.value)["window_id"] for r in corrected]
    lost = sent - len(set(ids))
    duplicates = len(ids) - len(set(ids))
    print(
        f"\nSIGKILL test: N={sent} windows, kills={kills}, lost={lost}, "
        f"duplicate rate={duplicates / sent:.3f}"
    )
    assert lost == 0
    by_window: dict[str, set[str]] = defaultdict(set)
    for r in events:
        doc = orjson.loads(r.value)
        by_window[doc["window_id"]].add(doc["event_id"])
    assert all(len(ids) == 1 for ids in by_window.values()), "a redelivery changed an event_id"
    assert {r.value for r in dead} == set(BAD)


json_messages = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
).map(orjson.dumps)

window_like = st.fixed_dictionaries(
    {
        "schema_version": st.sampled_from([1, 1, 1, 2, "1"]),
        "window_id": st.text(min_size=0, max_size=10),
        "series_id": st.text(min_size=1, max_size=10),
        "start": st.sampled_from(["2026-11-24T03:00:00Z", "yesterday", "2026-11-24T03:00:00"]),
        "interval_ms": st.sampled_from([1000, 0, -5, 1.5]),
        "channels": st.lists(st.sampled_from(["dim_1", "dim_2", "x"]), max_size=3),
        "values": st.lists(
            st.lists(st.none() | st.floats(-1e6, 1e6) | st.text(max_size=2), max_size=3), max_size=4
        ),
    }
).map(orjson.dumps)


def test_fuzzed_messages_all_land_somewhere_and_the_worker_survives(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    drawn: list[bytes] = []

    @settings(
        max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(st.binary(max_size=300) | json_messages | window_like)
    def collect(raw: bytes) -> None:
        drawn.append(raw)

    collect()
    drawn.append(b"[" * 100000 + b"]" * 100000)  # deep nesting
    drawn.append(b'{"schema_version": 1, "values": [' + b"1.0," * 1_300_000 + b"1.0]}")  # ~5 MB
    worker = start_worker(kafka_bootstrap, topics, registry, tmp_path / "worker.log")
    try:
        worker.wait_for("partitions_assigned", timeout=40)
        producer = KafkaProducer(
            bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=8 << 20
        )
        for raw in drawn:
            producer.send(topics.input, value=raw)
        producer.flush(60)
        producer.close()
        dead = read_topic(kafka_bootstrap, topics.dlq, len(drawn), timeout_s=90)
        corrected = read_topic(kafka_bootstrap, topics.corrected, 0, timeout_s=3)
        assert worker.proc.poll() is None, "the worker died on fuzzed input"
    finally:
        assert worker.stop() == 0
    print(f"\nfuzz: {len(drawn)} inputs tried, {len(dead)} dead-lettered, {len(corrected)} valid")
    assert len(dead) + len(corrected) == len(drawn)
    classes = {dict(r.headers)["vaewatch.error.class"].decode() for r in dead}
    assert {"not_json", "too_large", "wrong_version"} <= classes
