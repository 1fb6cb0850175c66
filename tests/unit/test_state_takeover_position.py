"""A takeover's restore rolls back the previous owner's uncommitted batch.

Measured on the embedded broker (Tansu, kafka-python): the poll that reports a partition
assigned also returns its records from the committed offset on, so the consumer's position
is already past them when the state is restored. The rollback rule must use the first
offset this member will process (the committed one), not that position: otherwise the
previous owner's uncommitted batch is restored as applied (`now`) and replayed on top of it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from kafkaio.records import InRecord, TopicPartition
from schemas.messages import encode_window
from schemas.series_csv import read_series_csv
from tests.model_factory import SMD
from tests.unit.test_worker_loop import START, FakeSink, FakeSource
from tests.unit.test_worker_state_loop import drain, scores, state_loop
from vaecore import Detector
from vwbase.errors import BrokerError

pytestmark = pytest.mark.unit


def back_to_back(detector: Detector, n: int) -> list[InRecord]:
    """n windows of one series on partition 0, each starting where the one before ended."""
    table = read_series_csv(SMD / "test.csv")
    w, out = detector.window, []
    for i in range(n):
        start = START + timedelta(minutes=i * w)
        values = table.values[i * w : (i + 1) * w]
        raw = encode_window(f"s/{i}", "s", start, 60000, list(table.channels), values)
        out.append(InRecord("in", 0, i, b"s", raw, 0))
    return out


@dataclass
class TakeoverSource(FakeSource):
    """Partition 0 assigned in the first poll, which returns its records from the commit on;
    `position` is the consumer's: past what the polls returned (as kafka-python's is)."""

    _told: bool = False
    _next: int = 0

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        out = super().poll(timeout_ms, max_records)
        if out:
            self._next = out[-1].offset + 1
        return out

    def take_assigned(self) -> set[TopicPartition]:
        told, self._told = self._told, True
        return set() if told else {("in", 0)}

    def position(self, partition: TopicPartition) -> int:
        return self._next


def test_an_uncommitted_batch_of_the_previous_owner_is_replayed_from_its_before(
    tiny_detector: Detector,
) -> None:
    detector = dataclasses.replace(tiny_detector, smoothing=96)
    whole = back_to_back(detector, 12)
    everything = FakeSource(list(whole))
    everything_sink = FakeSink(everything.log)
    drain(state_loop(everything, everything_sink, detector), everything, detector)
    continuous = scores(everything_sink)

    first = FakeSource(whole[:8])  # batches 0-3 and 4-7 sent and flushed...
    first_sink = FakeSink(first.log)
    drain(state_loop(first, first_sink, detector), first, detector)
    changelog = [(r.key or b"", r.value) for r in first_sink.acked if r.topic == "state"]

    second = TakeoverSource(whole[4:])  # ...but only 0-3 committed: the new owner reads 4-11
    second_sink = FakeSink(second.log)
    loop = state_loop(second, second_sink, detector, read_state=lambda p: changelog)
    drain(loop, second, detector)
    assert scores(second_sink) == {k: continuous[k] for k in scores(second_sink)}


def test_a_failed_changelog_read_loses_no_record_and_restores_later(
    tiny_detector: Detector,
) -> None:
    """The read raises BrokerError (broker away, or the 60 s timeout). The records the
    assigning poll returned (and later polls of that partition) are held back, the read is
    retried with backoff, and once it succeeds they are scored, after their state."""
    whole = back_to_back(tiny_detector, 8)
    source = TakeoverSource(list(whole))
    sink = FakeSink(source.log)
    calls = []

    def read_state(partition: int) -> list[tuple[bytes, bytes | None]]:
        calls.append(partition)
        if len(calls) == 1:
            raise BrokerError("state changelog read failed: KafkaTimeoutError")
        return []

    loop = state_loop(source, sink, tiny_detector, read_state=read_state)
    stop = threading.Event()
    deadline = time.monotonic() + 30
    while len(scores(sink)) < 8 and time.monotonic() < deadline:  # the retry backs off
        try:
            batch = loop.collect(stop)
        except BrokerError:
            continue  # what WorkerLoop.run does, after a backoff
        if batch:
            loop.process(batch, tiny_detector, stop)
    assert set(scores(sink)) == {f"s/{i}" for i in range(8)}
    assert len(calls) == 2, "the restore is tried again"
