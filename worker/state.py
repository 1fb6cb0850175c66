"""Per-series state (contract §7): what the worker carries across a series' windows, durable.

What: per series, the recent raw step scores the rolling mean needs (`ScoreHistory`'s tail)
and the episode state (`worker.episodes`). Where: in memory for the partitions this worker
owns, and on the broker in a changelog topic (STATE_TOPIC; key = series_id, partition = the
input partition, `cleanup.policy=compact` where the broker honours it). When: each batch's
state records ride with its outputs (sent, flushed together, and only then the input offsets
committed: the loop's checkpoint); restored when a partition is assigned, dropped when
revoked.

Exactly the same scores and episodes after a crash, without transactions: a state record
holds the series' state after the batch (`now`), its state before the batch (`before`) and
the input offset of the series' first record in that batch (`from`). When a partition is
restored, a record whose `from` lies at or past the partition's read position belongs to a
batch that was never committed and is about to be read again, so its `before` is restored
and the redelivered windows compute what they computed the first time (same scores, same
episode messages, repeated). Otherwise `now`. The latest record per key wins and a
tombstone (no value) deletes, so a compacted and an uncompacted changelog restore alike.
Only one batch's records can be uncommitted at a time: the loop sends a batch only after
the one before it is checkpointed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from kafkaio.records import OutRecord
from vaecore.smoothing import ScoreHistory
from worker.episodes import EpisodeRules, SeriesEpisodes, expire

STATE_FORMAT = 1
EXPIRE_EVERY_S = 10.0


def _encode_tail(tail: tuple[int, np.ndarray] | None) -> dict[str, Any] | None:
    if tail is None:
        return None
    end, scores = tail
    raw = np.ascontiguousarray(scores, dtype="<f4").tobytes()
    return {"end": end, "scores": base64.b64encode(raw).decode("ascii")}


def _decode_tail(doc: dict[str, Any] | None) -> tuple[int, np.ndarray] | None:
    if doc is None:
        return None
    scores = np.frombuffer(base64.b64decode(doc["scores"]), dtype="<f4").astype(np.float32)
    return int(doc["end"]), scores


@dataclass
class _Touched:
    """A series seen in the batch being scored: where it began and what it was before."""

    partition: int
    from_offset: int
    offset: int
    before: dict[str, Any] | None


@dataclass
class SeriesStates:
    """Every owned series' state, in memory; touched only by the scoring thread."""

    rules: EpisodeRules = field(default_factory=EpisodeRules)
    ttl_ms: int | None = None
    expire_every_s: float = EXPIRE_EVERY_S  # the idle scan visits every series: not per batch
    clock: Callable[[], float] = time.monotonic
    history: ScoreHistory = field(default_factory=lambda: ScoreHistory(max_series=None))
    episodes: dict[str, SeriesEpisodes] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)
    seen_ms: dict[str, int] = field(default_factory=dict)  # data time: newest window end
    _touched: dict[str, _Touched] = field(default_factory=dict)
    _expired: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    _tombstones_due: list[tuple[str, int]] = field(default_factory=list)
    _next_expiry_scan: float = 0.0

    def __len__(self) -> int:
        return len(self.partition_of)

    # --- one series -----------------------------------------------------------------
    def snapshot(self, series_id: str) -> dict[str, Any] | None:
        if series_id not in self.partition_of:
            return None
        episodes = self.episodes.get(series_id)
        return {
            "tail": _encode_tail(self.history.export(series_id)),
            "episodes": episodes.to_dict() if episodes is not None else None,
            "seen_ms": self.seen_ms.get(series_id),
        }

    def install(self, series_id: str, partition: int, snap: dict[str, Any] | None) -> None:
        self.forget(series_id)
        if snap is None:
            return
        self.partition_of[series_id] = partition
        tail = _decode_tail(snap.get("tail"))
        if tail is not None:
            self.history.restore(series_id, *tail)
        if snap.get("episodes") is not None:
            self.episodes[series_id] = SeriesEpisodes.from_dict(snap["episodes"])
        if snap.get("seen_ms") is not None:
            self.seen_ms[series_id] = int(snap["seen_ms"])

    def forget(self, series_id: str) -> None:
        self.history.forget(series_id)
        self.episodes.pop(series_id, None)
        self.partition_of.pop(series_id, None)
        self.seen_ms.pop(series_id, None)

    def open_episodes(self) -> int:
        return sum(1 for e in self.episodes.values() if e.episode is not None)

    def episode_state(self, series_id: str) -> SeriesEpisodes:
        return self.episodes.setdefault(series_id, SeriesEpisodes())

    # --- one batch ------------------------------------------------------------------
    def touch(self, series_id: str, partition: int, offset: int) -> None:
        """Before a window of the series is scored: remember the state it starts from."""
        seen = self._touched.get(series_id)
        if seen is None:
            self._touched[series_id] = _Touched(partition, offset, offset, self.snapshot(series_id))
        else:
            seen.offset = max(seen.offset, offset)
        self.partition_of[series_id] = partition

    def saw(self, series_id: str, end_ms: int) -> None:
        self.seen_ms[series_id] = max(self.seen_ms.get(series_id, end_ms), end_ms)

    def expire_idle(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Series idle for ttl (data time of their partition): deleted, episodes resolved.

        At most once per `expire_every_s` of wall time, since it visits every series: which
        batch an expiry lands in then depends on timing, but not what it says (the resolve
        is at the series' own last data time, and a replay repeats it identically)."""
        if self.ttl_ms is None or not self.seen_ms:
            return []
        now = self.clock()
        if now < self._next_expiry_scan:
            return []
        self._next_expiry_scan = now + self.expire_every_s
        newest: dict[int, int] = {}
        for series_id, seen in self.seen_ms.items():
            p = self.partition_of[series_id]
            newest[p] = max(newest.get(p, seen), seen)
        out = []
        for series_id, seen in list(self.seen_ms.items()):
            p = self.partition_of[series_id]
            if newest[p] - seen <= self.ttl_ms or series_id in self._touched:
                continue
            before = self.snapshot(series_id)  # taken first: a replay must resolve again
            resolved = expire(self.episode_state(series_id), series_id, self.rules)
            if before is not None:
                self._expired.append((series_id, p, self._offset_in(p), before))
            self.forget(series_id)
            out.append((series_id, resolved))
        return out

    def _offset_in(self, partition: int) -> int:
        """An offset of this batch in `partition` (the expiry is caused by its records)."""
        offsets = [t.from_offset for t in self._touched.values() if t.partition == partition]
        return min(offsets) if offsets else 0

    def take_records(self, topic: str) -> list[OutRecord]:
        """The batch's state records (one per touched or expired series); resets the batch.

        An expired series first gets a record saying "deleted, unless this batch is read
        again" (so a crash before the commit restores it); the batch after, sent only once
        this one is committed, writes its tombstone, which lets compaction drop the key.
        """
        out = [
            tombstone(topic, s, p) for s, p in self._tombstones_due if s not in self.partition_of
        ]
        out += [
            _state_record(
                topic, s, t.partition, t.from_offset, t.offset, t.before, self.snapshot(s)
            )
            for s, t in self._touched.items()
        ]
        out += [
            _state_record(topic, s, p, offset, offset, before, None)
            for s, p, offset, before in self._expired
        ]
        self._tombstones_due = [(s, p) for s, p, _, _ in self._expired]
        self._touched, self._expired = {}, []
        return out

    # --- partitions -----------------------------------------------------------------
    def drop_partitions(self, partitions: Iterable[int]) -> int:
        gone = set(partitions)
        # their new owner may write a series again before our next batch: no late tombstone
        self._tombstones_due = [(s, p) for s, p in self._tombstones_due if p not in gone]
        series = [s for s, p in self.partition_of.items() if p in gone]
        for s in series:
            self.forget(s)
        return len(series)

    def restore_partition(
        self, partition: int, records: Iterable[tuple[bytes, bytes | None]], position: int
    ) -> int:
        """Install a partition's series from its changelog records (oldest first).

        `position` = the input partition's next offset to read: records of batches at or
        past it were not committed, so their series go back to the state before the batch.
        """
        latest: dict[str, bytes | None] = {}
        for key, value in records:
            latest[key.decode()] = value
        installed = 0
        for series_id, value in latest.items():
            if value is None:
                self.forget(series_id)
                continue
            doc = orjson.loads(value)
            snap = doc["before"] if doc["from"] >= position else doc["now"]
            self.install(series_id, partition, snap)
            installed += snap is not None
        return installed


def _state_record(
    topic: str,
    series_id: str,
    partition: int,
    from_offset: int,
    offset: int,
    before: dict[str, Any] | None,
    now: dict[str, Any] | None,
) -> OutRecord:
    doc = {
        "format": STATE_FORMAT,
        "series_id": series_id,
        "from": from_offset,
        "offset": offset,
        "before": before,
        "now": now,
    }
    return OutRecord(topic, series_id.encode(), orjson.dumps(doc), partition=partition)


def tombstone(topic: str, series_id: str, partition: int) -> OutRecord:
    return OutRecord(topic, series_id.encode(), None, partition=partition)
