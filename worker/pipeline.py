"""One micro-batch, records in -> records out. No Kafka here, no clocks but `now`.

Every input record yields, in input order: a dead letter (invalid input), or a corrected
window plus, when anomalous, an anomaly event, plus the episode messages the window caused.
All valid windows of the batch are scored and corrected in one stateless call
(`Detector.stateless`: `point_scores` + `correct`, all on the device on CUDA; here or in
the scoring process: `worker.scorer_process`), then smoothed with each series' history
(`Detector.window_scores`). With per-series state (`SeriesStates`), each series' score tail
and episode advance window by window, and the batch ends with the episodes of series that
expired and one state record per series it touched (the changelog, `worker.state`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kafkaio.records import InRecord, OutRecord
from schemas.episodes import encode_episode
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
    make_event_id,
)
from vaecore import Detector, WindowScores
from vaecore.smoothing import SeriesLink
from worker.episodes import ScoredWindow, apply
from worker.events import Verdict, event_points, merge_corrected, verdict
from worker.scorer_process import compute_stateless
from worker.scorer_wire import Stateless
from worker.state import SeriesStates


@dataclass(frozen=True)
class Topics:
    events: str
    corrected: str
    dlq: str
    episodes: str = ""  # "" = episodes are tracked but not published
    state: str = ""  # "" = no state changelog


@dataclass(frozen=True)
class StepCounts:
    """Step scores of a batch's windows, and how many were above the window threshold: over
    time their ratio is the live per-step alarm rate, to hold against the rate the threshold
    was fitted for (`Thresholds.fitted_false_alarm_rate`). Overlapping windows count a step
    once per window that holds it."""

    scored: int
    above: int


def count_steps(scores: list[WindowScores], threshold: float) -> StepCounts:
    steps = [s.step for s in scores]
    if not steps:
        return StepCounts(0, 0)
    joined = np.concatenate(steps)
    return StepCounts(int(np.isfinite(joined).sum()), int((joined > threshold).sum()))


@dataclass
class BatchOutput:
    records: list[OutRecord] = field(default_factory=list)
    valid: int = 0
    events: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    window_ends: list[datetime] = field(default_factory=list)  # for the window-age metric
    score_seconds: float = 0.0
    episodes: dict[str, int] = field(default_factory=dict)  # messages by status
    steps: StepCounts = StepCounts(0, 0)


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
    steps: StepCounts = StepCounts(0, 0)
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # anomalous windows, by slot id
    episodes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by slot id
    expired: list[dict[str, Any]] = field(default_factory=list)  # idle series' resolves
    state_records: list[OutRecord] = field(default_factory=list)


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


def valid_windows(decoded: DecodedBatch) -> list[np.ndarray]:
    """The (T, C_model) arrays of the batch's valid windows, in input order."""
    return [s.values for s in decoded.slots if isinstance(s, _Valid)]


def score_batch(
    decoded: DecodedBatch,
    detector: Detector,
    topics: Topics,
    clock: Callable[[], float] | None = None,
    states: SeriesStates | None = None,
    stateless: Callable[[], Stateless] | None = None,
) -> ScoredBatch:
    """All valid windows scored and corrected at once, then smoothed series by series.

    `stateless` gives the batch's point scores and corrections when they are computed
    elsewhere (the scoring process); by default they are computed here. `states` carries
    each series' recent step scores (the rolling mean the thresholds apply to runs on
    across windows) and its episode from batch to batch; only the scoring thread touches it.
    """
    valid = [s for s in decoded.slots if isinstance(s, _Valid)]
    batch = ScoredBatch(decoded, {}, 0.0)
    if valid:
        tick = clock or time.perf_counter
        started = tick()
        links = [series_link(v.window) for v in valid]
        if states is not None:
            for v in valid:
                states.touch(v.window.series_id, v.record.partition, v.record.offset)
        history = states.history if states is not None else None
        windows = [v.values for v in valid]
        points, corrections = (
            stateless() if stateless is not None else compute_stateless(detector, windows)
        )
        scores = detector.window_scores(points, links, history)
        batch.score_seconds = tick() - started
        th = detector.active_thresholds
        batch.steps = count_steps(scores, th.window)
        for v, sc, c in zip(valid, scores, corrections, strict=True):
            batch.scored[id(v)] = (sc, c.values, c.replaced)
            if sc.is_anomaly:
                batch.verdicts[id(v)] = verdict(sc, th.window, th.window_spread, detector.channels)
        if states is not None:
            batch.episodes = _advance_episodes(
                valid, links, scores, batch.verdicts, detector, states
            )
    if states is not None:
        batch.expired = [m for _, resolved in states.expire_idle() for m in resolved]
        records = states.take_records(topics.state)  # also ends the batch's bookkeeping
        batch.state_records = records if topics.state else []  # no changelog: nothing to send
    return batch


def _advance_episodes(
    valid: list[_Valid],
    links: list[SeriesLink],
    scores: list[WindowScores],
    verdicts: dict[int, Verdict],
    detector: Detector,
    states: SeriesStates,
) -> dict[int, list[dict[str, Any]]]:
    """Each window moves its series' episode, in input order (the rules: worker.episodes)."""
    out: dict[int, list[dict[str, Any]]] = {}
    normal = Verdict("low", {})  # a normal window's severity and channels are never read
    for v, link, s in zip(valid, links, scores, strict=True):
        series = v.window.series_id
        said = verdicts.get(id(v), normal)
        window = ScoredWindow(
            window_id=v.window.window_id,
            start_ms=link.start,
            end_ms=link.end,
            is_anomaly=s.is_anomaly,
            score=s.score,
            severity=said.severity,
            channel_scores=said.channel_scores,
            event_id=(
                make_event_id(v.window.window_id, detector.name, detector.version)
                if s.is_anomaly
                else ""
            ),
            model=(detector.name, detector.version),
        )
        messages = apply(states.episode_state(series), series, window, states.rules)
        states.saw(series, link.end)
        if messages:
            out[id(v)] = messages
    return out


def encode_batch(
    batch: ScoredBatch,
    detector: Detector,
    topics: Topics,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchOutput:
    """Stage 3 (Python: JSON): output records in input order (events before corrected)."""
    out = BatchOutput(
        dead_letters=dict(batch.decoded.dead_letters),
        score_seconds=batch.score_seconds,
        steps=batch.steps,
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
            said = batch.verdicts[id(slot)]
            event = encode_event(
                slot.window,
                model=model,
                source=source,
                score=s.score,
                threshold=th.window,
                severity=said.severity,
                channel_scores=said.channel_scores,
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
        _episode_records(out, batch.episodes.get(id(slot), []), topics, detected_at)
    _episode_records(out, batch.expired, topics, detected_at)
    out.records.extend(batch.state_records)
    return out


def _episode_records(
    out: BatchOutput, messages: list[dict[str, Any]], topics: Topics, emitted_at: datetime
) -> None:
    for fields in messages:
        out.episodes[fields["status"]] = out.episodes.get(fields["status"], 0) + 1
        if topics.episodes:
            key = fields["series_id"].encode()
            out.records.append(OutRecord(topics.episodes, key, encode_episode(fields, emitted_at)))


def process_batch(
    records: list[InRecord],
    detector: Detector,
    topics: Topics,
    max_bytes: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] | None = None,
    states: SeriesStates | None = None,
) -> BatchOutput:
    """The three stages in one call (the worker loop runs them on two threads)."""
    decoded = decode_batch(records, detector, topics, max_bytes)
    scored = score_batch(decoded, detector, topics, clock, states)
    return encode_batch(scored, detector, topics, now)
