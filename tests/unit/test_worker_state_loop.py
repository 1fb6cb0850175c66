"""The worker loop with per-series state: changelog records, restore on assignment, revocation."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import timedelta

import orjson
import pytest

from kafkaio.records import InRecord, OutRecord, TopicPartition
from schemas.messages import encode_window
from schemas.series_csv import read_series_csv
from tests.model_factory import SMD
from tests.unit.test_worker_loop import START, FakeSink, FakeSource, ScriptedSource, records
from vaecore import Detector
from worker.loop import WorkerLoop
from worker.pipeline import Topics
from worker.restore import StateReader
from worker.state import SeriesStates

pytestmark = pytest.mark.unit
TOPICS = Topics("events", "corrected", "dlq", episodes="episodes", state="state")


def one_partition(detector: Detector, n: int) -> list[InRecord]:
    """n consecutive windows of one series ("s"), all on partition 0 as keyed records are."""
    return records(detector, n, partitions=1)


def two_series(detector: Detector, n: int) -> list[InRecord]:
    """Series "a" on partition 0 and "b" on partition 1, alternating, n windows in all."""
    table = read_series_csv(SMD / "test.csv")
    out = []
    for i in range(n):
        series, p = ("a", 0) if i % 2 == 0 else ("b", 1)
        values = table.values[i * 8 : i * 8 + detector.window]
        start = START + timedelta(minutes=i * 8)
        raw = encode_window(f"{series}/{i}", series, start, 60000, list(table.channels), values)
        out.append(InRecord("in", p, i // 2, series.encode(), raw, 0))
    return out


@pytest.fixture
def smoothed(tiny_detector: Detector) -> Detector:
    """The tiny model with a rolling mean reaching across windows (its own has none)."""
    return dataclasses.replace(tiny_detector, smoothing=96)


def state_loop(
    source: FakeSource, sink: FakeSink, detector: Detector, read_state: StateReader | None = None
) -> WorkerLoop:
    return WorkerLoop(
        source,
        sink,
        lambda: detector,
        TOPICS,
        max_batch=4,
        max_batch_wait_ms=0,
        max_message_bytes=1 << 22,
        flush_timeout_s=1.0,
        states=SeriesStates(),
        read_state=read_state,
    )


def drain(loop: WorkerLoop, source: FakeSource, detector: Detector) -> None:
    stop = threading.Event()
    while source.records:
        batch = loop.collect(stop)
        if batch:
            loop.process(batch, detector, stop)


def scores(sink: FakeSink) -> dict[str, float]:
    out = {}
    for r in sink.acked:
        if r.topic == "corrected":
            doc = orjson.loads(r.value or b"")
            out[doc["window_id"]] = doc["score"]
    return out


@dataclass
class AssigningSource(FakeSource):
    """Reports partition 0 assigned on the first poll, read from `start`."""

    start: int = 0
    _told: bool = False

    def take_assigned(self) -> set[TopicPartition]:
        told, self._told = self._told, True
        return set() if told else {("in", 0)}

    def position(self, partition: TopicPartition) -> int:
        return self.start


def test_state_records_are_flushed_with_the_outputs_before_the_commit(
    tiny_detector: Detector,
) -> None:
    source = FakeSource(one_partition(tiny_detector, 8))
    sink = FakeSink(source.log)
    drain(state_loop(source, sink, tiny_detector), source, tiny_detector)
    state = [r for r in sink.acked if r.topic == "state"]
    assert len(state) == 2  # one per batch of 4 for the one series
    assert all(r.key == b"s" and r.partition == 0 for r in state)
    assert [orjson.loads(r.value or b"")["from"] for r in state] == [0, 4]
    assert source.log == ["flush", "commit", "flush", "commit"]


def test_a_restored_partition_scores_as_if_the_worker_had_never_stopped(
    smoothed: Detector,
) -> None:
    tiny_detector = smoothed
    whole = one_partition(tiny_detector, 12)
    source = FakeSource(list(whole))
    sink = FakeSink(source.log)
    drain(state_loop(source, sink, tiny_detector), source, tiny_detector)
    continuous = scores(sink)

    first = FakeSource(whole[:8])  # the first worker stops after 8 windows...
    first_sink = FakeSink(first.log)
    drain(state_loop(first, first_sink, tiny_detector), first, tiny_detector)
    changelog = [(r.key or b"", r.value) for r in first_sink.acked if r.topic == "state"]

    second = AssigningSource(whole[8:], start=8)  # ...the next one restores and goes on
    second_sink = FakeSink(second.log)
    read: list[int] = []

    def read_state(partition: int) -> list[tuple[bytes, bytes | None]]:
        read.append(partition)
        return changelog

    loop = state_loop(second, second_sink, tiny_detector, read_state=read_state)
    drain(loop, second, tiny_detector)
    resumed = scores(second_sink)
    assert read == [0], "only the assigned partition's changelog is read, once"
    assert resumed == {k: continuous[k] for k in resumed}

    cold = AssigningSource(whole[8:], start=8)  # without the changelog the scores differ
    cold_sink = FakeSink(cold.log)
    drain(state_loop(cold, cold_sink, tiny_detector, read_state=lambda p: []), cold, tiny_detector)
    assert scores(cold_sink) != resumed


def test_no_state_record_is_sent_for_a_partition_revoked_meanwhile(
    tiny_detector: Detector,
) -> None:
    source = ScriptedSource(two_series(tiny_detector, 16), revoke={("in", 1)}, revoke_on_poll=5)
    sink = FakeSink(source.log)
    loop = state_loop(source, sink, tiny_detector)
    loop.max_batch = 2
    loop.run(source.stop)
    state: list[OutRecord] = [r for r in sink.sent if r.topic == "state"]
    # Behind (every batch fills its cap), batch k is sent after poll k + 2: "b" (partition 1)
    # has state records from batches 1 and 2 only, sent before poll 5 reported the
    # revocation; batches 3 and 4 were in the pipeline then and send none
    assert [(r.key, r.partition) for r in state].count((b"b", 1)) == 2
    assert set(loop.states.partition_of) == {"a"}


def test_without_a_state_topic_no_state_record_is_sent(tiny_detector: Detector) -> None:
    from tests.unit.test_worker_loop import TOPICS as NO_STATE_TOPIC

    source = FakeSource(one_partition(tiny_detector, 4))
    sink = FakeSink(source.log)
    loop = state_loop(source, sink, tiny_detector)
    loop.topics = NO_STATE_TOPIC
    drain(loop, source, tiny_detector)
    assert {r.topic for r in sink.sent} <= {"corrected", "events"}
    assert sum(r.topic == "corrected" for r in sink.sent) == 4
    assert len(loop.states) == 1  # the state is still kept in memory (smoothing, episodes)
