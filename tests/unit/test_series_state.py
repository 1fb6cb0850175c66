"""Per-series state (worker.state): snapshots, changelog records, restore with rollback."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from kafkaio.records import OutRecord
from vaecore.smoothing import SeriesLink, trailing
from worker.episodes import EpisodeRules, ScoredWindow, apply
from worker.state import SeriesStates

TOPIC = "state"
RULES = EpisodeRules(open_min_windows=2, open_within_windows=3, resolve_after_windows=3)


def feed(
    states: SeriesStates, series: str, i: int, offset: int, anomalous: bool
) -> list[dict[str, Any]]:
    """One 10-step window of `series`: tail recorded, episode advanced."""
    states.touch(series, 0, offset)
    link = SeriesLink(series, i * 10, (i + 1) * 10)
    raw = np.full(10, float(i), dtype=np.float32)
    tail = states.history.before(link, 5)
    states.history.record(link, tail, raw, 5)
    states.saw(series, link.end)
    w = ScoredWindow(
        f"{series}/{i}", link.start, link.end, anomalous, 1.0, "low", {}, f"e{i}", ("m", "1")
    )
    return apply(states.episode_state(series), series, w, states.rules)


def changelog(records: list[OutRecord]) -> list[tuple[bytes, bytes | None]]:
    return [(r.key or b"", r.value) for r in records]


def test_state_records_carry_before_now_and_the_first_offset() -> None:
    states = SeriesStates()
    feed(states, "a", 0, offset=7, anomalous=False)
    feed(states, "a", 1, offset=9, anomalous=False)
    (record,) = states.take_records(TOPIC)
    doc = orjson.loads(record.value or b"")
    assert (record.topic, record.key, record.partition) == (TOPIC, b"a", 0)
    assert doc["from"] == 7 and doc["offset"] == 9 and doc["before"] is None
    assert doc["now"]["episodes"]["applied_end_ms"] == 20
    assert states.take_records(TOPIC) == []  # the batch was reset


def test_restore_rolls_back_an_uncommitted_batch_and_replays_identically() -> None:
    first = SeriesStates(rules=RULES)
    log: list[OutRecord] = []
    msgs: list[dict[str, Any]] = []
    for i, flag in enumerate("..xx"):  # batch 1: offsets 0..3, committed
        msgs += feed(first, "a", i, offset=i, anomalous=flag == "x")
    log += first.take_records(TOPIC)
    for i, flag in enumerate("x....", start=4):  # batch 2: offsets 4..8, never committed
        msgs += feed(first, "a", i, offset=i, anomalous=flag == "x")
    log += first.take_records(TOPIC)
    tail_after = first.history.export("a")

    again = SeriesStates(rules=RULES)  # a new owner; position 4: batch 2 is read again
    assert again.restore_partition(0, changelog(log), position=4) == 1
    replayed: list[dict[str, Any]] = []
    for i, flag in enumerate("x....", start=4):
        replayed += feed(again, "a", i, offset=i, anomalous=flag == "x")
    assert [m["status"] for m in msgs] == ["open", "resolved"]
    assert replayed == msgs[1:]  # the same resolve, same id and seq
    tail_again = again.history.export("a")
    assert tail_after is not None and tail_again is not None
    assert tail_after[0] == tail_again[0]
    np.testing.assert_array_equal(tail_after[1], tail_again[1])


def test_restore_takes_the_committed_state_when_the_batch_was_committed() -> None:
    states = SeriesStates()
    for i in range(3):
        feed(states, "a", i, offset=i, anomalous=True)
    log = states.take_records(TOPIC)
    again = SeriesStates()
    again.restore_partition(0, changelog(log), position=3)
    assert again.snapshot("a") == states.snapshot("a")


def test_latest_record_per_key_wins_and_a_tombstone_deletes() -> None:
    states = SeriesStates()
    feed(states, "a", 0, offset=0, anomalous=False)
    feed(states, "b", 0, offset=1, anomalous=False)
    log = states.take_records(TOPIC)
    feed(states, "a", 1, offset=2, anomalous=True)
    log += states.take_records(TOPIC)
    log.append(OutRecord(TOPIC, b"b", None, partition=0))
    again = SeriesStates()
    again.restore_partition(0, changelog(log), position=3)
    assert again.snapshot("a") == states.snapshot("a")
    assert again.snapshot("b") is None and len(again) == 1


def test_tail_survives_the_round_trip_so_smoothing_runs_on() -> None:
    states = SeriesStates()
    for i in range(3):
        feed(states, "a", i, offset=i, anomalous=False)
    again = SeriesStates()
    again.restore_partition(0, changelog(states.take_records(TOPIC)), position=3)
    link = SeriesLink("a", 30, 40)
    raw = np.arange(10, dtype=np.float64)
    expected = trailing(raw, 5, states.history.before(link, 5))
    np.testing.assert_allclose(trailing(raw, 5, again.history.before(link, 5)), expected)


def test_idle_series_expire_resolving_their_episode_then_get_a_tombstone() -> None:
    states = SeriesStates(ttl_ms=100, expire_every_s=0)
    feed(states, "idle", 0, offset=0, anomalous=True)
    feed(states, "idle", 1, offset=1, anomalous=True)  # an open episode
    states.take_records(TOPIC)
    feed(states, "busy", 30, offset=2, anomalous=False)  # partition time moves to 310
    ((series, resolved),) = states.expire_idle()
    assert series == "idle" and [m["status"] for m in resolved] == ["resolved"]
    records = states.take_records(TOPIC)
    expired = next(r for r in records if r.key == b"idle")
    assert orjson.loads(expired.value or b"")["now"] is None
    assert states.snapshot("idle") is None
    feed(states, "busy", 31, offset=3, anomalous=False)
    tombstones = [r for r in states.take_records(TOPIC) if r.value is None]
    assert [(r.key, r.partition) for r in tombstones] == [(b"idle", 0)]


def test_dropping_a_partition_forgets_only_its_series() -> None:
    states = SeriesStates()
    feed(states, "a", 0, offset=0, anomalous=False)
    states.touch("b", 1, 0)
    states.saw("b", 10)
    states.take_records(TOPIC)
    assert states.drop_partitions({0}) == 1
    assert states.snapshot("a") is None and states.snapshot("b") is not None


def test_the_idle_scan_runs_at_most_once_per_interval_of_wall_time() -> None:
    now = [0.0]
    states = SeriesStates(ttl_ms=100, expire_every_s=10, clock=lambda: now[0])
    feed(states, "idle", 0, offset=0, anomalous=False)
    states.take_records(TOPIC)
    assert states.expire_idle() == []  # scanned: nothing idle yet
    feed(states, "busy", 30, offset=1, anomalous=False)
    states.take_records(TOPIC)
    now[0] = 5.0
    assert states.expire_idle() == []  # not due: the idle series waits for the next scan
    now[0] = 10.0
    assert [s for s, _ in states.expire_idle()] == ["idle"]
