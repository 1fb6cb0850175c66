"""One micro-batch, records in -> records out. No Kafka here, no clocks but `now`.

Every input record yields, in input order: a dead letter (invalid input), or a corrected
window plus, when anomalous, an anomaly event. All valid windows of the batch are scored
in one `Detector.score` call and corrected in one `Detector.correct` call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from kafkaio.records import InRecord, OutRecord
from schemas.messages import (
    DecodedWindow,
    InvalidMessage,
    ModelRef,
    SourceRef,
    align_to_model,
    dead_letter_headers,
    decode_window,
    encode_corrected,
    encode_event,
)
from vaecore import Detector, WindowScores
from vaecore.smoothing import ScoreHistory, SeriesLink
from worker.events import event_points, merge_corrected, severity


@dataclass(frozen=True)
class Topics:
    events: str
    corrected: str
    dlq: str


@dataclass
class BatchOutput:
    records: list[OutRecord] = field(default_factory=list)
    valid: int = 0
    events: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    window_ends: list[datetime] = field(default_factory=list)  # for the window-age metric
    score_seconds: float = 0.0


@dataclass(frozen=True)
class _Valid:
    record: InRecord
    window: DecodedWindow
    values: np.ndarray  # (T, C_model)


def _dead_letter(record: InRecord, exc: InvalidMessage, topics: Topics) -> OutRecord:
    headers = dead_letter_headers(
        exc.error_class, exc.reason, record.topic, record.partition, record.offset
    )
    return OutRecord(topics.dlq, record.key, record.value, headers)


@dataclass
class DecodedBatch:
    """Stage 1 (Python: JSON + validation): every record as a dead letter or a valid window."""

    slots: list[OutRecord | _Valid]
    dead_letters: dict[str, int]


@dataclass
class ScoredBatch:
    """Stage 2 (the network): scores and corrections of the valid windows, by slot id."""

    decoded: DecodedBatch
    scored: dict[int, tuple[WindowScores, np.ndarray, np.ndarray]]
    score_seconds: float


def decode_batch(
    records: list[InRecord], detector: Detector, topics: Topics, max_bytes: int
) -> DecodedBatch:
    slots: list[OutRecord | _Valid] = []
    dead: dict[str, int] = {}
    for record in records:
        try:
            window = decode_window(record.value, max_bytes)
            values = align_to_model(window, detector.channels, detector.window)
        except InvalidMessage as exc:
            slots.append(_dead_letter(record, exc, topics))
            dead[exc.error_class] = dead.get(exc.error_class, 0) + 1
            continue
        slots.append(_Valid(record, window, values))
    return DecodedBatch(slots, dead)


def series_link(window: DecodedWindow) -> SeriesLink:
    """The window's place in its series, in epoch milliseconds: [start, start + T * interval)."""
    start = int(window.start.timestamp() * 1000)
    end = start + window.interval_ms * len(window.values)
    return SeriesLink(window.series_id, start, end, window.interval_ms)


def score_batch(
    decoded: DecodedBatch,
    detector: Detector,
    clock: Callable[[], float] | None = None,
    history: ScoreHistory | None = None,
) -> ScoredBatch:
    """All valid windows in one `Detector.score` and one `Detector.correct` call.

    `history` carries each series' recent step scores from batch to batch (the rolling mean
    the thresholds apply to runs on across windows); only the scoring thread touches it.
    """
    valid = [s for s in decoded.slots if isinstance(s, _Valid)]
    scored: dict[int, tuple[WindowScores, np.ndarray, np.ndarray]] = {}
    seconds = 0.0
    if valid:
        tick = clock or time.perf_counter
        started = tick()
        links = [series_link(v.window) for v in valid]
        scores = detector.score([v.values for v in valid], links, history)
        corrections = detector.correct([v.values for v in valid], scores)
        seconds = tick() - started
        for v, sc, c in zip(valid, scores, corrections, strict=True):
            scored[id(v)] = (sc, c.values, c.replaced)
    return ScoredBatch(decoded, scored, seconds)


def encode_batch(
    batch: ScoredBatch,
    detector: Detector,
    topics: Topics,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchOutput:
    """Stage 3 (Python: JSON): output records in input order (events before corrected)."""
    out = BatchOutput(
        dead_letters=dict(batch.decoded.dead_letters), score_seconds=batch.score_seconds
    )
    model = ModelRef(name=detector.name, version=detector.version)
    th = detector.active_thresholds
    detected_at = now()
    for slot in batch.decoded.slots:
        if isinstance(slot, OutRecord):
            out.records.append(slot)
            continue
        s, corrected_values, replaced = batch.scored[id(slot)]
        source = SourceRef(
            topic=slot.record.topic, partition=slot.record.partition, offset=slot.record.offset
        )
        key = slot.window.series_id.encode()
        if s.is_anomaly:
            event = encode_event(
                slot.window,
                model=model,
                source=source,
                score=s.score,
                threshold=th.window,
                severity=severity(s.score, th.window, th.window_spread),
                channel_scores=dict(zip(detector.channels, map(float, s.channel), strict=True)),
                anomalous_points=event_points(slot.window, slot.values, s, detector.channels),
                detected_at=detected_at,
            )
            out.records.append(OutRecord(topics.events, key, event))
            out.events += 1
        values_full, pairs = merge_corrected(
            slot.window, detector.channels, corrected_values, replaced
        )
        corrected = encode_corrected(
            slot.window,
            values_full,
            pairs,
            is_anomaly=s.is_anomaly,
            score=s.score,
            model=model,
            source=source,
        )
        out.records.append(OutRecord(topics.corrected, key, corrected))
        out.valid += 1
        out.window_ends.append(slot.window.end)
    return out


def process_batch(
    records: list[InRecord],
    detector: Detector,
    topics: Topics,
    max_bytes: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] | None = None,
    history: ScoreHistory | None = None,
) -> BatchOutput:
    """The three stages in one call (the worker loop runs them on two threads)."""
    decoded = decode_batch(records, detector, topics, max_bytes)
    return encode_batch(score_batch(decoded, detector, clock, history), detector, topics, now)
