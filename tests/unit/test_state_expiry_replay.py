"""An expiry whose batch is read again (not committed) resolves its episode again, identically.

The `now: null` record of an expired series rolls back to its `before` when the batch is
replayed; `before` must be the state before the expiry (episode still open), or the replay
finds nothing to resolve and a `resolved` message lost in a partial flush never comes.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from kafkaio.records import OutRecord
from vaecore.smoothing import SeriesLink
from worker.episodes import ScoredWindow, apply
from worker.state import SeriesStates

pytestmark = pytest.mark.unit
TOPIC = "state"


def feed(states: SeriesStates, series: str, i: int, offset: int, anomalous: bool) -> None:
    states.touch(series, 0, offset)
    link = SeriesLink(series, i * 10, (i + 1) * 10)
    states.history.record(link, states.history.before(link, 5), np.zeros(10, np.float32), 5)
    states.saw(series, link.end)
    w = ScoredWindow(
        f"{series}/{i}", link.start, link.end, anomalous, 1.0, "low", {}, f"e{i}", ("m", "1")
    )
    apply(states.episode_state(series), series, w, states.rules)


def log_of(records: list[OutRecord]) -> list[tuple[bytes, bytes | None]]:
    return [(r.key or b"", r.value) for r in records]


def test_a_replayed_expiry_resolves_the_episode_again_with_the_same_message() -> None:
    states = SeriesStates(ttl_ms=100, expire_every_s=0)
    feed(states, "idle", 0, offset=0, anomalous=True)
    feed(states, "idle", 1, offset=1, anomalous=True)  # an open episode
    log = log_of(states.take_records(TOPIC))  # batch 1, committed: position 2
    feed(states, "busy", 30, offset=2, anomalous=False)  # batch 2: partition time 310
    ((_, first),) = states.expire_idle()
    batch2 = states.take_records(TOPIC)
    expired = orjson.loads(next(r.value for r in batch2 if r.key == b"idle") or b"")
    assert expired["now"] is None
    assert expired["before"]["episodes"]["episode"] is not None, "before = state before expiry"

    again = SeriesStates(
        ttl_ms=100, expire_every_s=0
    )  # a crash before batch 2 was committed: position 2
    again.restore_partition(0, log + log_of(batch2), position=2)
    assert again.open_episodes() == 1
    feed(again, "busy", 30, offset=2, anomalous=False)  # batch 2 read again
    ((_, replayed),) = again.expire_idle()
    assert replayed == first and [m["status"] for m in first] == ["resolved"]


def test_no_tombstone_for_a_partition_revoked_since_the_expiry() -> None:
    """Its new owner may have written the series again: a late tombstone would delete it."""
    states = SeriesStates(ttl_ms=100, expire_every_s=0)
    feed(states, "idle", 0, offset=0, anomalous=False)
    states.touch("other", 1, 0)  # a series on partition 1, which this member keeps
    states.saw("other", 10)
    states.take_records(TOPIC)
    feed(states, "busy", 30, offset=1, anomalous=False)  # partition 0's time moves on
    assert [s for s, _ in states.expire_idle()] == ["idle"]
    states.take_records(TOPIC)  # "idle": now = null; its tombstone is due with the next batch
    states.drop_partitions({0})  # partition 0 moves to another member
    states.touch("other", 1, 1)
    states.saw("other", 20)
    assert [r.key for r in states.take_records(TOPIC) if r.value is None] == []
