"""The worker loop on in-memory fakes: checkpoint order, dead letters, rebalances, model swaps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from kafkaio.records import DeliveryError, InRecord, OutRecord, TopicPartition
from schemas.messages import decode_window, encode_window
from schemas.series_csv import read_series_csv
from tests.model_factory import SMD
from vaecore import Detector
from worker.loop import GROW_BYTES, START_BATCH, WorkerLoop, next_offsets
from worker.pipeline import Topics, process_batch

pytestmark = pytest.mark.unit
TOPICS = Topics("events", "corrected", "dlq")
START = datetime(2026, 11, 24, tzinfo=UTC)


@dataclass
class FakeSource:
    records: list[InRecord]
    revoke_after_poll: set[TopicPartition] = field(default_factory=set)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    polled: int = 0
    max_outstanding: int = 0
    _revoked: set[TopicPartition] = field(default_factory=set)

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        out, self.records = self.records[:max_records], self.records[max_records:]
        self.polled += len(out)
        self.max_outstanding = max(self.max_outstanding, len(out))
        if out and self.revoke_after_poll:
            self._revoked |= self.revoke_after_poll
            self.revoke_after_poll = set()
        return out

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append("commit")
        self.committed.update(offsets)

    def assignment(self) -> set[TopicPartition]:
        return {("in", 0), ("in", 1)}

    def take_revoked(self) -> set[TopicPartition]:
        revoked, self._revoked = self._revoked, set()
        return revoked

    def take_assigned(self) -> set[TopicPartition]:
        return set()

    def position(self, partition: TopicPartition) -> int:
        return 0

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.log.append(f"seek {partition[1]}@{offset}")

    def lag(self) -> dict[TopicPartition, int]:
        return {}

    def close(self) -> None:
        self.log.append("close")


@dataclass
class FakeSink:
    log: list[str]
    fail_flushes: int = 0
    sent: list[OutRecord] = field(default_factory=list)
    acked: list[OutRecord] = field(default_factory=list)
    _pending: list[OutRecord] = field(default_factory=list)

    def send(self, record: OutRecord) -> None:
        self._pending.append(record)
        self.sent.append(record)

    def flush(self, timeout_s: float) -> None:
        self.log.append("flush")
        if self.fail_flushes:
            self.fail_flushes -= 1
            self._pending.clear()
            raise DeliveryError("broker away")
        self.acked.extend(self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.log.append("sink_close")


def window_bytes(i: int, values: np.ndarray, channels: Iterable[str]) -> bytes:
    start = START + timedelta(minutes=i)
    return encode_window(f"s/{i}", "s", start, 60000, list(channels), values)


def records(detector: Detector, n: int, partitions: int = 2) -> list[InRecord]:
    table = read_series_csv(SMD / "test.csv")
    out = []
    for i in range(n):
        values = table.values[i * 8 : i * 8 + detector.window]
        raw = window_bytes(i, values, table.channels)
        out.append(InRecord("in", i % partitions, i // partitions, b"s", raw, 0))
    return out


def make_loop(
    source: FakeSource,
    sink: FakeSink,
    detector: Detector | Callable[[], Detector],
    max_batch: int = 16,
    max_batch_wait_ms: int = 0,
    start_batch: int = START_BATCH,
    grow_bytes: int = GROW_BYTES,
) -> WorkerLoop:
    """A loop on the fakes; `detector` may be a callable returning the current version."""
    return WorkerLoop(
        source,
        sink,
        detector if callable(detector) else (lambda: detector),
        TOPICS,
        max_batch=max_batch,
        max_batch_wait_ms=max_batch_wait_ms,
        max_message_bytes=1 << 22,
        flush_timeout_s=1.0,
        start_batch=start_batch,
        grow_bytes=grow_bytes,
    )


def run_until_drained(loop: WorkerLoop, source: FakeSource) -> None:
    stop = threading.Event()
    while source.records:
        batch = loop.collect(stop)
        if batch:
            loop.process(batch, loop.detector() or pytest.fail("no model"), stop)


def test_outputs_are_acknowledged_before_offsets_are_committed(tiny_detector: Detector) -> None:
    source = FakeSource(records(tiny_detector, 10))
    sink = FakeSink(source.log)
    run_until_drained(make_loop(source, sink, tiny_detector, max_batch=4), source)
    assert source.log[:2] == ["flush", "commit"]
    assert all(
        a == "flush" and b == "commit"
        for a, b in zip(source.log[::2], source.log[1::2], strict=True)
    )
    assert source.committed == {("in", 0): 5, ("in", 1): 5}
    corrected = [r for r in sink.acked if r.topic == "corrected"]
    assert len(corrected) == 10


def test_a_failed_flush_commits_nothing_and_resends_the_batch(tiny_detector: Detector) -> None:
    source = FakeSource(records(tiny_detector, 4))
    sink = FakeSink(source.log, fail_flushes=2)
    loop = make_loop(source, sink, tiny_detector)
    loop.flush_timeout_s = 0.01
    batch = loop.collect(threading.Event())
    stop = threading.Event()
    out = loop.process(batch, tiny_detector, stop)
    assert out is not None
    assert source.log == ["flush", "flush", "flush", "commit"]
    assert len([r for r in sink.acked if r.topic == "corrected"]) == 4


def test_stop_during_an_outage_leaves_offsets_uncommitted(tiny_detector: Detector) -> None:
    source = FakeSource(records(tiny_detector, 2))
    sink = FakeSink(source.log, fail_flushes=100)
    loop = make_loop(source, sink, tiny_detector)
    stop = threading.Event()
    batch = loop.collect(stop)
    stop.set()
    assert loop.process(batch, tiny_detector, stop) is None
    assert source.committed == {}


def test_bad_messages_go_to_the_dlq_with_reasons_and_the_rest_is_processed(
    tiny_detector: Detector,
) -> None:
    good = records(tiny_detector, 2)
    bad_values = [b"not json", b'{"schema_version": 9}', orjson.dumps({"schema_version": 1})]
    bad = [InRecord("in", 0, 10 + i, None, v, 0) for i, v in enumerate(bad_values)]
    short = window_bytes(99, np.zeros((3, len(tiny_detector.channels))), tiny_detector.channels)
    bad.append(InRecord("in", 0, 20, b"s", short, 0))
    out = process_batch(good + bad, tiny_detector, TOPICS, 1 << 22)
    dlq = [r for r in out.records if r.topic == "dlq"]
    assert len(dlq) == 4
    classes = [dict(r.headers)["vaewatch.error.class"].decode() for r in dlq]
    assert classes == ["not_json", "wrong_version", "missing_field", "too_short"]
    assert [r.value for r in dlq[:3]] == bad_values  # original bytes, unchanged
    assert out.valid == 2


@dataclass
class RebalancingSource(FakeSource):
    """Like kafka-python: a rebalance runs inside a poll, whose records are all fetched under
    the new assignment; a partition assigned again restarts from its committed offset."""

    polls: list[tuple[set[TopicPartition], list[InRecord]]] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        if not self.polls:
            return []
        revoked, out = self.polls.pop(0)
        self._revoked |= revoked
        return out


def test_a_rebalance_drops_earlier_records_of_revoked_partitions_and_keeps_what_it_fetched(
    tiny_detector: Detector,
) -> None:
    r = records(tiny_detector, 6)  # partitions alternate 0, 1; offsets 0, 0, 1, 1, 2, 2
    source = RebalancingSource([])
    # poll 1: p0@0, p1@0. poll 2: p1 revoked and assigned again -> re-fetched from its
    # committed offset (none yet: 0) together with p0@1 and p1@1.
    source.polls = [(set(), [r[0], r[1]]), ({("in", 1)}, [r[2], r[1], r[3]])]
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, tiny_detector, max_batch=5, max_batch_wait_ms=200)
    batch = loop.collect(threading.Event())
    assert [(x.partition, x.offset) for x in batch] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    loop.process(batch, tiny_detector)
    assert source.committed == {("in", 0): 2, ("in", 1): 2}, "nothing skipped on either partition"


@dataclass
class KeptPositionSource(FakeSource):
    """kafka-python's behaviour on a partition assigned back to the same member: it keeps
    its fetch position. A scripted rebalance (revoked and re-assigned inside one poll) hits
    after `rebalance_at` polls; partitions are read round-robin, `per_poll` records a poll."""

    logs: dict[int, list[InRecord]] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    rebalance_at: int = 1
    rebalance: set[TopicPartition] = field(default_factory=set)
    per_poll: int = 2
    polls: int = 0
    _assigned: set[TopicPartition] = field(default_factory=set)

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        self.polls += 1
        if self.polls == self.rebalance_at + 1:
            self._revoked |= self.rebalance
            self._assigned |= self.rebalance  # assigned back: positions kept
        out = []
        for p, log in self.logs.items():
            at = self.positions.get(p, 0)
            take = log[at : at + min(self.per_poll, max_records)]
            self.positions[p] = at + len(take)
            out.extend(take)
        return out

    def take_assigned(self) -> set[TopicPartition]:
        assigned, self._assigned = self._assigned, set()
        return assigned

    def seek(self, partition: TopicPartition, offset: int) -> None:
        super().seek(partition, offset)
        self.positions[partition[1]] = offset


def test_a_partition_assigned_back_rereads_what_the_rebalance_dropped(
    tiny_detector: Detector,
) -> None:
    """The consumer keeps its fetch position for a partition it gets back: the loop must seek
    back to what it dropped, or a later commit skips it (the two-worker takeover loss)."""
    r = records(tiny_detector, 12)  # partitions alternate 0, 1; offsets 0..5 each
    logs = {p: [x for x in r if x.partition == p] for p in (0, 1)}
    source = KeptPositionSource([], logs=logs, rebalance_at=1, rebalance={("in", 1)})
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, tiny_detector, max_batch=6, max_batch_wait_ms=200)
    stop = threading.Event()
    for _ in range(6):
        batch = loop.collect(stop)
        if batch:
            loop.process(batch, tiny_detector)
    assert "seek 1@0" in source.log
    assert source.committed == {("in", 0): 6, ("in", 1): 6}
    seen = {
        (d["source"]["partition"], d["source"]["offset"])
        for d in (orjson.loads(x.value or b"") for x in sink.acked if x.topic == "corrected")
    }
    assert seen == {(x.partition, x.offset) for x in r}, "a record was skipped"


def test_model_is_swapped_only_between_batches_and_outputs_name_it(tiny_detector: Detector) -> None:
    from dataclasses import replace

    v2 = replace(tiny_detector, version="2", name="m")
    current = {"d": replace(tiny_detector, version="1", name="m")}
    source = FakeSource(records(tiny_detector, 4))
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, lambda: current["d"], max_batch=2)
    stop = threading.Event()
    first = loop._serving_model()
    assert first is not None
    loop.process(loop.collect(stop), first)
    current["d"] = v2
    second = loop._serving_model()
    assert second is not None
    loop.process(loop.collect(stop), second)
    versions = [
        orjson.loads(r.value or b"")["model"]["version"]
        for r in sink.acked
        if r.topic == "corrected"
    ]
    assert versions == ["1", "1", "2", "2"]


def test_a_version_promoted_while_the_loop_waits_for_records_scores_them(
    tiny_detector: Detector,
) -> None:
    from dataclasses import replace

    current = {"d": replace(tiny_detector, version="1", name="m")}
    v2 = replace(tiny_detector, version="2", name="m")
    stop = threading.Event()

    class SwapDuringPoll(FakeSource):
        def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
            if not self.records:
                stop.set()
                return []
            current["d"] = v2  # the watcher swaps while the loop is blocked in poll
            return super().poll(timeout_ms, max_records)

    source = SwapDuringPoll(records(tiny_detector, 3))
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, lambda: current["d"], max_batch=8)
    loop.run(stop)
    versions = [
        orjson.loads(r.value or b"")["model"]["version"]
        for r in sink.acked
        if r.topic == "corrected"
    ]
    assert versions == ["2", "2", "2"]


@dataclass
class ScriptedSource(FakeSource):
    """Stops the loop when drained; on poll number `revoke_on_poll`, `revoke` moves to another
    member: revoked, and from then on its records are not returned (as the consumer does)."""

    stop: threading.Event = field(default_factory=threading.Event)
    revoke: set[TopicPartition] = field(default_factory=set)
    revoke_on_poll: int = 0
    polls: int = 0
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        if not self.records:
            self.stop.set()
            return []
        self.polls += 1
        if self.polls == self.revoke_on_poll:
            self._revoked |= self.revoke
        out = super().poll(timeout_ms, max_records)
        if self.polls >= self.revoke_on_poll > 0:
            out = [r for r in out if (r.topic, r.partition) not in self.revoke]
        return out

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        super().commit(offsets)


def test_pipelined_run_sends_and_commits_in_consumption_order(tiny_detector: Detector) -> None:
    source = ScriptedSource(records(tiny_detector, 12))
    sink = FakeSink(source.log)
    make_loop(source, sink, tiny_detector, max_batch=2).run(source.stop)
    ids = [orjson.loads(r.value or b"")["window_id"] for r in sink.acked if r.topic == "corrected"]
    assert ids == [f"s/{i}" for i in range(12)]
    assert source.committed == {("in", 0): 6, ("in", 1): 6}
    for earlier, later in zip(source.commits, source.commits[1:], strict=False):
        assert all(later[tp] > earlier[tp] for tp in later if tp in earlier)


def test_a_revocation_while_batches_are_in_the_pipeline_keeps_them_all_from_committing_it(
    tiny_detector: Detector,
) -> None:
    # batch 1 is sent, batch 2 is on the scoring thread when poll 3 reports the revocation:
    # neither may commit the revoked partition (its new owner re-reads from the last commit)
    source = ScriptedSource(records(tiny_detector, 8), revoke={("in", 1)}, revoke_on_poll=3)
    sink = FakeSink(source.log)
    make_loop(source, sink, tiny_detector, max_batch=2).run(source.stop)
    assert source.commits[0] == {("in", 0): 1}
    assert source.commits[1] == {("in", 0): 2}
    assert source.commits[2] == {("in", 0): 3}, "the revoked partition's record was dropped"


def logged_run(loop: WorkerLoop, source: ScriptedSource) -> list[str]:
    """Runs the loop until the source is drained; the order of its submits and finishes."""
    events: list[str] = []
    submit, finish = loop._submit, loop._finish

    def logged_submit(batch: list[InRecord], detector: Detector) -> Any:
        events.append("submit")
        return submit(batch, detector)

    def logged_finish(scoring: Any) -> Any:
        events.append("finish")
        return finish(scoring)

    loop._submit = logged_submit  # type: ignore[method-assign]
    loop._finish = logged_finish  # type: ignore[method-assign]
    loop.run(source.stop)
    return events


def test_while_records_are_queued_two_batches_wait_for_the_scorer_behind_the_one_finished(
    tiny_detector: Detector,
) -> None:
    """A backlog (every batch fills its cap): from the second full batch on, a batch is
    finished only once two more are queued for scoring, so the scorer has work while the
    main thread encodes, sends and checkpoints; outputs and commits stay in order."""
    source = ScriptedSource(records(tiny_detector, 12))
    sink = FakeSink(source.log)
    events = logged_run(make_loop(source, sink, tiny_detector, max_batch=2), source)
    assert events[:4] == ["submit", "submit", "submit", "finish"]
    assert events.count("submit") == events.count("finish") == 6
    ids = [orjson.loads(r.value or b"")["window_id"] for r in sink.acked if r.topic == "corrected"]
    assert ids == [f"s/{i}" for i in range(12)]
    assert source.committed == {("in", 0): 6, ("in", 1): 6}


def test_two_batches_are_queued_only_after_two_full_batches_in_a_row(
    tiny_detector: Detector,
) -> None:
    """One full batch after a slow iteration is no backlog yet: it keeps the shallow pipeline
    (a batch published one collect sooner); a second in a row deepens it; a short one ends it."""
    r = records(tiny_detector, 20)
    source = FakeSource(r[:12])
    loop = make_loop(source, FakeSink(source.log), tiny_detector, max_batch=4, start_batch=4)
    stop = threading.Event()
    depths = []
    for queued in (r[:4], r[4:8], r[8:12], r[12:14], r[14:18]):
        source.records = list(queued)
        loop.collect(stop)
        depths.append(loop._depth())
    assert depths == [1, 2, 2, 1, 1]


@dataclass
class TricklingScriptedSource(ScriptedSource):
    """One record a poll: with no wait, every batch falls short of its cap (keeping up)."""

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        return super().poll(timeout_ms, min(max_records, 1))


def test_while_the_loop_keeps_up_each_batch_is_finished_after_one_more_is_queued(
    tiny_detector: Detector,
) -> None:
    source = TricklingScriptedSource(records(tiny_detector, 6))
    sink = FakeSink(source.log)
    events = logged_run(make_loop(source, sink, tiny_detector, max_batch=2), source)
    assert events[:5] == ["submit", "submit", "finish", "submit", "finish"]
    assert source.committed == {("in", 0): 3, ("in", 1): 3}


@dataclass
class TricklingSource(FakeSource):
    """Returns at most `per_poll` records a poll, so a batch fills across several polls."""

    per_poll: int = 2

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        return super().poll(timeout_ms, min(max_records, self.per_poll))


def test_batches_never_exceed_max_batch(tiny_detector: Detector) -> None:
    """Each poll brings 2 records and the loop waits to fill a batch of 3: the second poll of
    a batch must ask for what is left (1), never for a whole batch again."""
    source = TricklingSource(records(tiny_detector, 20), per_poll=2)
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, tiny_detector, max_batch=3, max_batch_wait_ms=300)
    stop = threading.Event()
    sizes = []
    while source.records:
        batch = loop.collect(stop)
        sizes.append(len(batch))
        loop.process(batch, tiny_detector, stop)
    assert max(sizes) <= 3, f"batch sizes {sizes}"
    assert sizes[0] == 3, "the first batch fills across polls"
    assert sum(sizes) == 20


def test_batches_grow_while_records_are_queued_and_shrink_once_the_loop_keeps_up(
    tiny_detector: Detector,
) -> None:
    """A backlog: every batch fills its cap at once, so the next may be twice as large, up to
    max_batch. A batch the wait cut short keeps the cap while it still collected more than
    the start size (records come fast) or nothing at all, and puts it back to the start
    size otherwise."""
    r = records(tiny_detector, 59)
    source = FakeSource(r[:28])
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, tiny_detector, max_batch=16, start_batch=4)
    stop = threading.Event()

    def collect(queued: list[InRecord]) -> int:
        source.records = queued
        return len(loop.collect(stop))

    assert [len(loop.collect(stop)) for _ in range(3)] == [4, 8, 16], "grows while filled"
    assert collect([]) == 0, "a busy loop looking in: nothing queued, nothing learned"
    assert collect(r[28:38]) == 10, "the wait cut it, above the start size: the cap stays"
    assert collect(r[38:50]) == 12, "a cap back at 4 would have cut this batch at 4"
    assert collect(r[50:53]) == 3, "three queued records: at most the start size"
    assert collect(r[53:59]) == 4, "after so short a batch the cap starts small again"


def test_batches_stop_growing_where_twice_their_bytes_would_pass_the_budget(
    tiny_detector: Detector,
) -> None:
    r = records(tiny_detector, 40)
    second = sum(len(x.value) for x in r[4:12])  # the bytes of the second batch, 8 records
    source = FakeSource(r)
    sink = FakeSink(source.log)
    loop = make_loop(
        source, sink, tiny_detector, max_batch=32, start_batch=4, grow_bytes=2 * second - 1
    )
    stop = threading.Event()
    assert [len(loop.collect(stop)) for _ in range(4)] == [4, 8, 8, 8]


def test_run_finishes_the_batch_in_hand_when_stopped(tiny_detector: Detector) -> None:
    source = FakeSource(records(tiny_detector, 5))
    sink = FakeSink(source.log)
    loop = make_loop(source, sink, tiny_detector, max_batch=5)
    stop = threading.Event()
    original = loop.collect

    def collect_then_stop(s: threading.Event, idle_ms: int = 200) -> list[InRecord]:
        batch = original(s, idle_ms)
        stop.set()  # SIGTERM arrives while the batch is in hand
        return batch

    loop.collect = collect_then_stop  # type: ignore[method-assign, assignment]
    loop.run(stop)
    assert source.committed == {("in", 0): 3, ("in", 1): 2}
    assert len([r for r in sink.acked if r.topic == "corrected"]) == 5


def test_next_offsets_is_last_plus_one_per_partition() -> None:
    batch = [InRecord("t", p, o, None, b"", 0) for p, o in [(0, 5), (0, 7), (1, 2)]]
    assert next_offsets(batch) == {("t", 0): 8, ("t", 1): 3}
    assert next_offsets(batch, exclude={("t", 0)}) == {("t", 1): 3}


def test_events_carry_points_channels_and_deterministic_ids(tiny_detector: Detector) -> None:
    table = read_series_csv(SMD / "test.csv")
    values = table.values[300 : 300 + tiny_detector.window].copy()
    values[10, 3] += 50.0  # an unmistakable spike on dim_4
    raw = window_bytes(1, values, table.channels)
    rec = InRecord("in", 0, 0, b"s", raw, 0)
    first = process_batch([rec], tiny_detector, TOPICS, 1 << 22)
    again = process_batch([rec], tiny_detector, TOPICS, 1 << 22)
    events = [orjson.loads(r.value or b"") for r in first.records if r.topic == "events"]
    assert len(events) == 1
    points = events[0]["anomalous_points"]
    assert any(p["index"] == 10 and p["channel"] == "dim_4" for p in points)
    again_events = [orjson.loads(r.value or b"") for r in again.records if r.topic == "events"]
    assert events[0]["event_id"] == again_events[0]["event_id"]
    corrected = next(orjson.loads(r.value or b"") for r in first.records if r.topic == "corrected")
    assert [10, 3] in corrected["corrected"]
    assert abs(corrected["values"][10][3] - table.values[310, 3]) < 5.0


@dataclass
class LaggingSource(FakeSource):
    """Reports lag for what it owns; `owned` shrinks when a partition is revoked."""

    owned: set[TopicPartition] = field(default_factory=lambda: {("in", 0), ("in", 1)})

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def lag(self) -> dict[TopicPartition, int]:
        return {tp: 10 + tp[1] for tp in self.owned}

    def revoke(self, tp: TopicPartition) -> None:
        self.owned.discard(tp)
        self._revoked.add(tp)


def lag_gauge(loop: WorkerLoop, partition: int) -> float | None:
    labels = {"topic": "in", "partition": str(partition)}
    return loop.metrics.registry.get_sample_value("vaewatch_consumer_lag", labels)


def test_lag_gauges_of_revoked_partitions_are_removed(tiny_detector: Detector) -> None:
    source = LaggingSource(records(tiny_detector, 4))
    loop = make_loop(source, FakeSink(source.log), tiny_detector)
    loop._update_lag()
    assert (lag_gauge(loop, 0), lag_gauge(loop, 1)) == (10, 11)
    source.revoke(("in", 1))
    loop.collect(threading.Event())  # the poll that runs the rebalance
    assert lag_gauge(loop, 1) is None, "a revoked partition's gauge would be summed twice"
    assert lag_gauge(loop, 0) == 10
    loop._last_lag = 0.0
    loop._update_lag()
    assert lag_gauge(loop, 1) is None


def test_lag_gauges_of_partitions_lost_without_a_callback_go_at_the_next_update(
    tiny_detector: Detector,
) -> None:
    source = LaggingSource(records(tiny_detector, 2))
    loop = make_loop(source, FakeSink(source.log), tiny_detector)
    loop._update_lag()
    source.owned.discard(("in", 0))  # e.g. the consumer lost the group without a revocation
    loop._last_lag = 0.0
    loop._update_lag()
    assert lag_gauge(loop, 0) is None
    assert lag_gauge(loop, 1) == 11


def test_the_live_alarm_rate_counts_step_scores_beside_the_models_fitted_rate(
    tiny_detector: Detector,
) -> None:
    """vaewatch_steps_above_threshold / vaewatch_steps_scored is the live per-step alarm
    rate; vaewatch_model_false_alarm_rate{kind} what the serving model's threshold stands for."""
    source = FakeSource(records(tiny_detector, 12))
    windows = [decode_window(r.value or b"").values for r in source.records]
    steps = np.concatenate([tiny_detector.score([w])[0].step for w in windows])
    middle = float(np.nanmedian(steps))  # a threshold half the steps are above
    th = replace(tiny_detector.active_thresholds, window=middle, fitted_false_alarm_rate=0.02)
    detector = tiny_detector.with_thresholds(th)
    loop = make_loop(source, FakeSink(source.log), detector)
    assert loop._serving_model() is detector
    run_until_drained(loop, source)
    sample = loop.metrics.registry.get_sample_value
    assert sample("vaewatch_steps_scored_total") == np.isfinite(steps).sum()
    assert sample("vaewatch_steps_above_threshold_total") == (steps > middle).sum() > 0
    kinds = ("target", "fitted")
    rates = {k: sample("vaewatch_model_false_alarm_rate", {"kind": k}) for k in kinds}
    assert rates == {"target": th.target_false_alarm_rate, "fitted": 0.02}
