"""The processing loop: poll, micro-batch, score, publish, checkpoint. Nothing lost.

Checkpoint (at-least-once, the contract's delivery promise), once per micro-batch:
  1. every output of the batch (corrected windows, events, dead letters) is sent;
  2. the sink is flushed: every output must be acknowledged by the broker (acks=all),
     or `DeliveryError` is raised and nothing is committed;
  3. only then the offsets are committed: per partition, last processed offset + 1.
A crash anywhere before 3 means the batch is consumed again: duplicates are possible,
losses are not, and a redelivered window yields the same `event_id`.

Pipelining, in order: the network (Detector.score/correct) runs on a scoring thread and
releases the GIL; beside it the main thread polls and decodes the next batch, encodes the
previous batch's outputs, sends them and checkpoints the one before. While records are
queued (the last two batches filled their caps), two decoded batches wait for the scorer
behind the one the main thread finishes, so the scorer is not idle while the main thread
encodes, sends and checkpoints (same-run A/B: x1.04-1.14 windows/s, docs/benchmarks.md);
while the loop keeps up, one does, and a batch is published one collect sooner. Batches are
sent and checkpointed strictly in consumption order. Backpressure: at most four
micro-batches (4 x MAX_BATCH records) are in memory; when scoring is slower than input, the
loop waits for the scorer, polls less often, and the consumer's bounded fetch buffers stop
growing.
Batch size adapts (`collect`): 256 records while the loop keeps up (latency), up to
MAX_BATCH while records are queued (throughput: per-batch costs shared by more windows).
Rebalances: records of partitions revoked during a poll are dropped before processing;
every batch not yet checkpointed leaves those partitions out of its commit (and out of its
state records), and the partition's new owner reads them from the last committed offset.
With a scoring process (`VAEWATCH_SCORER=process`, `worker.scorer_process`), the main thread
also sends each decoded batch's windows to the child process as it submits the batch, and
the scoring thread waits for the child's point scores and corrections (the GIL released)
and only smooths, advances the episodes and the state: the network runs on another core.
Per-series state (contract §7, `worker.state`): a partition's state is restored from the
changelog when it is assigned, before its first record is scored, and dropped when it is
revoked; both run on the scoring thread, in order with the batches, so they never race it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from kafkaio.records import (
    CommitError,
    DeliveryError,
    InRecord,
    Sink,
    Source,
    TopicPartition,
)
from vaecore import Detector
from vwbase.errors import BrokerError
from worker.observability import Health, Metrics
from worker.pipeline import (
    BatchOutput,
    DecodedBatch,
    ScoredBatch,
    Topics,
    decode_batch,
    encode_batch,
    process_batch,
    score_batch,
    valid_windows,
)
from worker.restore import PartitionRestorer, StateReader
from worker.scorer_process import ScorerProcess
from worker.scorer_wire import Stateless
from worker.state import SeriesStates

log = structlog.get_logger(__name__)
LAG_EVERY_S = 5.0
START_BATCH = 256  # the batch cap while the loop keeps up; doubles up to max_batch while behind
GROW_BYTES = 32 * 1024 * 1024  # ...while twice the batch's messages stay within this
BEHIND_DEPTH = 2  # batches queued for scoring behind the one finished, while records are queued


@dataclass(frozen=True)
class _InFlight:
    """A batch whose outputs were sent but not yet acknowledged and committed."""

    batch: list[InRecord]
    out: BatchOutput
    started: float
    revoked: set[TopicPartition] = field(default_factory=set)  # seen since it was collected


@dataclass(frozen=True)
class _Scoring:
    """A decoded batch on the scoring thread."""

    batch: list[InRecord]
    detector: Detector
    revoked: set[TopicPartition]
    started: float
    future: Future[ScoredBatch]


class WorkerLoop:
    def __init__(
        self,
        source: Source,
        sink: Sink,
        detector: Callable[[], Detector | None],
        topics: Topics,
        *,
        max_batch: int,
        max_batch_wait_ms: int,
        max_message_bytes: int,
        flush_timeout_s: float,
        metrics: Metrics | None = None,
        health: Health | None = None,
        states: SeriesStates | None = None,
        read_state: StateReader | None = None,
        scorer: ScorerProcess | None = None,
        start_batch: int = START_BATCH,
        grow_bytes: int = GROW_BYTES,
    ) -> None:
        self.source = source
        self.scorer = scorer  # None: the network runs on the scoring thread
        self.sink = sink
        self.detector = detector
        self.topics = topics
        self.max_batch = max_batch
        self.start_batch = max(1, min(start_batch, max_batch))
        self.grow_bytes = grow_bytes
        self._cap = self.start_batch  # this batch's size limit (`_next_cap`)
        self.max_batch_wait_ms = max_batch_wait_ms
        self.max_message_bytes = max_message_bytes
        self.flush_timeout_s = flush_timeout_s
        self.metrics = metrics or Metrics()
        self.health = health or Health()
        self._last_lag = 0.0
        self._serving: str | None = None
        # one revoked-partitions set per batch not yet checkpointed (scoring, sent, ...)
        self._open: list[set[TopicPartition]] = []
        # per revoked partition, the first offset dropped unprocessed (until reassignment)
        self._dropped_from: dict[TopicPartition, int] = {}
        self._scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaewatch-score")
        self._filled = 0  # consecutive batches that filled their cap (records are queued)
        # per-series state (score tails, episodes): only the one scoring thread touches it
        self.states = states if states is not None else SeriesStates()
        # a partition's install is queued on the scoring thread before any of its records
        self.restorer = PartitionRestorer(
            source, read_state, self._install_state, self._scorer.submit
        )

    # --- collecting -------------------------------------------------------------------
    def collect(self, stop: threading.Event, idle_ms: int = 200) -> list[InRecord]:
        """Up to the batch cap of records, waiting at most max_batch_wait_ms after the first.

        The cap adapts (`_next_cap`): a batch that filled its cap says records are queued,
        and the next may be twice as large, up to max_batch (and while twice its bytes stay
        within grow_bytes: wide messages gain nothing from larger batches, and memory and
        the producer's buffer stay bounded); it stays while the wait still collects more
        than start_batch (or nothing: a busy loop looks in briefly), and falls back to
        start_batch when it collects fewer.
        Behind (a backlog), batches grow and per-batch costs are shared by more windows;
        keeping up, they stay small and windows wait less.
        """
        cap = self._cap
        batch: list[InRecord] = []
        deadline: float | None = None
        while len(batch) < cap and not stop.is_set():
            if deadline is None:
                timeout_ms = idle_ms  # idle: wake regularly for heartbeats, health, stop, acks
            else:
                timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            batch.extend(self.restorer.released(cap - len(batch)))
            if len(batch) >= cap:
                break
            polled = self.source.poll(timeout_ms, cap - len(batch))
            self.health.beat()
            self.health.assigned = bool(self.source.assignment())
            revoked = self.source.take_revoked()
            if revoked:
                # A rebalance ran inside this poll. What it returned was fetched under the new
                # assignment (the consumer drops the rest), so it is kept: dropping it would
                # let a later commit skip it. Records from earlier polls of a revoked
                # partition are dropped, and no batch not yet committed may commit it.
                self._note_revoked(revoked)
                batch = self._drop_revoked(batch, revoked)
                self._scorer.submit(self._drop_state, revoked)
            assigned = self.source.take_assigned()
            polled = self._rewind_reassigned(polled, assigned)
            self.restorer.assigned(assigned, polled)
            self.restorer.restore()
            batch.extend(self.restorer.hold(polled))
            batch.extend(self.restorer.released(cap - len(batch)))
            if batch and deadline is None:
                deadline = time.monotonic() + self.max_batch_wait_ms / 1000
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not batch:
                break  # nothing arrived: return to the caller (it checks stop and lag)
        self._filled = self._filled + 1 if len(batch) >= cap else 0
        self._cap = self._next_cap(cap, batch)
        return batch

    def _next_cap(self, cap: int, batch: list[InRecord]) -> int:
        """Twice the cap after a batch that filled it (records are queued) if twice its
        bytes stay within grow_bytes; the same cap after one the wait cut above start_batch
        (records come fast) and after an empty collect (the loop only looked in while
        busy); else start_batch."""
        if len(batch) >= cap:
            fits = 2 * sum(len(r.value) for r in batch) <= self.grow_bytes
            return min(cap * 2, self.max_batch) if fits else cap
        if not batch or len(batch) > self.start_batch:
            return cap
        return self.start_batch

    def _drop_revoked(self, batch: list[InRecord], revoked: set[TopicPartition]) -> list[InRecord]:
        """Drop the batch's records of revoked partitions, remembering where they began."""
        batch = batch + self.restorer.revoked(revoked)  # held back for a restore: dropped too
        for r in batch:
            tp = (r.topic, r.partition)
            if tp in revoked:
                self._dropped_from[tp] = min(self._dropped_from.get(tp, r.offset), r.offset)
        return [r for r in batch if (r.topic, r.partition) not in revoked]

    def _rewind_reassigned(
        self, polled: list[InRecord], assigned: set[TopicPartition]
    ) -> list[InRecord]:
        """A partition assigned back to this member re-reads what the loop dropped of it.

        A new owner reads a partition from the last commit, but the consumer keeps its own
        fetch position for a partition it gets back, which lies past the records dropped at
        the revocation: read on from there, a later commit would skip them (a loss, seen in
        the two-worker takeover test). So: seek back to the first dropped record, and drop
        what this poll already returned of the partition (it lies beyond). Partitions not
        assigned back are someone else's now: their new owner reads from the commit.
        """
        if not assigned:
            return polled
        rewind = {tp: o for tp, o in self._dropped_from.items() if tp in assigned}
        self._dropped_from = {}
        for tp, offset in rewind.items():
            self.source.seek(tp, offset)
            log.info("partition_rewound", partition=f"{tp[0]}-{tp[1]}", offset=offset)
        return [r for r in polled if (r.topic, r.partition) not in rewind]

    # --- per-series state --------------------------------------------------------------
    def _drop_state(self, revoked: set[TopicPartition]) -> None:
        """On the scoring thread: the revoked partitions' series are someone else's now."""
        dropped = self.states.drop_partitions(p for _, p in revoked)
        self._state_gauges()
        log.info("state_dropped", partitions=sorted(p for _, p in revoked), series=dropped)

    def _state_gauges(self) -> None:
        self.metrics.state_series.set(len(self.states))
        self.metrics.open_episodes.set(self.states.open_episodes())

    def _install_state(
        self,
        tp: TopicPartition,
        records: list[tuple[bytes, bytes | None]],
        position: int,
        started: float,
    ) -> None:
        installed = self.states.restore_partition(tp[1], records, position)
        seconds = time.perf_counter() - started
        self.metrics.state_restore_seconds.observe(seconds)
        self._state_gauges()
        log.info(
            "state_restored",
            partition=f"{tp[0]}-{tp[1]}",
            position=position,
            records=len(records),
            series=installed,
            seconds=round(seconds, 3),
        )

    # --- one batch --------------------------------------------------------------------
    def process(
        self, batch: list[InRecord], detector: Detector, stop: threading.Event | None = None
    ) -> BatchOutput | None:
        """One batch, synchronously: score, send, checkpoint. None if stopped before the acks."""
        flight = self._score(batch, detector, self._opened())
        self._send(flight)
        return flight.out if self._checkpoint(flight, stop or threading.Event()) else None

    def _opened(self) -> set[TopicPartition]:
        """A revoked-partitions set for a new batch; filled by every later revocation."""
        revoked: set[TopicPartition] = set()
        self._open.append(revoked)
        return revoked

    def _note_revoked(self, revoked: set[TopicPartition]) -> None:
        for pending in self._open:  # no batch not yet checkpointed may commit these
            pending |= revoked
        self.metrics.forget_partitions(revoked)  # their new owner reports their lag

    def _score(
        self, batch: list[InRecord], detector: Detector, revoked: set[TopicPartition]
    ) -> _InFlight:
        started = time.perf_counter()
        out = process_batch(
            batch, detector, self.topics, self.max_message_bytes, states=self.states
        )
        return _InFlight(batch, out, started, revoked)

    def _submit(self, batch: list[InRecord], detector: Detector) -> _Scoring:
        """Decode here, score on the scoring thread; the caller goes on with other batches."""
        started = time.perf_counter()
        decoded = decode_batch(batch, detector, self.topics, self.max_message_bytes)
        stateless = self._send_to_scorer(decoded, detector)
        future = self._scorer.submit(
            score_batch, decoded, detector, self.topics, None, self.states, stateless
        )
        return _Scoring(batch, detector, self._opened(), started, future)

    def _send_to_scorer(
        self, decoded: DecodedBatch, detector: Detector
    ) -> Callable[[], Stateless] | None:
        """With a scoring process: the batch's windows go there now, in submission order;
        the scoring thread waits for the results. None: it computes them itself."""
        windows = valid_windows(decoded)
        if self.scorer is None or not windows:
            return None
        return self.scorer.submit(detector, windows)

    def _finish(self, scoring: _Scoring) -> _InFlight:
        """Wait for the network, then encode the outputs here (overlapping the next batch)."""
        out = encode_batch(scoring.future.result(), scoring.detector, self.topics)
        return _InFlight(scoring.batch, out, scoring.started, scoring.revoked)

    def _send(self, flight: _InFlight) -> None:
        """Checkpoint step 1: every output of the batch is handed to the producer.

        Not the state records of partitions revoked meanwhile: their new owner restores
        from the changelog, and this batch will not be committed for them.
        """
        revoked = {p for _, p in flight.revoked}
        for record in flight.out.records:
            if revoked and record.topic == self.topics.state and record.partition in revoked:
                continue
            self.sink.send(record)

    def _checkpoint(self, flight: _InFlight, stop: threading.Event) -> bool:
        """Checkpoint steps 2 and 3: every output acknowledged, then the offsets committed.

        A failed flush re-sends the whole batch with backoff while the broker is away:
        consumers may see duplicates (identical event_ids), never a gap. Returns False,
        with nothing committed, if asked to stop before the outputs were acknowledged.
        """
        delay = 0.5
        while True:
            try:
                self.sink.flush(self.flush_timeout_s)
                break
            except DeliveryError as exc:
                log.warning("publish_failed_retrying", error=str(exc), retry_in_s=delay)
                self.health.beat()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)
                self._send(flight)
        self._note_revoked(self.source.take_revoked())
        self._open = [pending for pending in self._open if pending is not flight.revoked]
        offsets = next_offsets(flight.batch, exclude=flight.revoked)
        try:
            self.source.commit(offsets)
        except CommitError as exc:  # e.g. a rebalance: the new owner re-reads these records
            log.warning("commit_failed", error=str(exc), partitions=len(offsets))
        self._observe(flight.batch, flight.out, flight.started)
        return True

    def _observe(self, batch: list[InRecord], out: BatchOutput, started: float) -> None:
        m = self.metrics
        now = time.time()
        m.consumed.inc(len(batch))
        m.corrected.inc(out.valid)
        m.events.inc(out.events)
        m.steps_scored.inc(out.steps.scored)
        m.steps_above.inc(out.steps.above)
        for status, n in out.episodes.items():
            m.episodes.labels(status=status).inc(n)
        m.open_episodes.inc(out.episodes.get("open", 0) - out.episodes.get("resolved", 0))
        m.state_series.set(len(self.states))
        for error_class, n in out.dead_letters.items():
            m.dead_letters.labels(error_class=error_class).inc(n)
        m.batch_size.observe(len(batch))
        m.scoring_seconds.observe(out.score_seconds)
        m.batch_seconds.observe(time.perf_counter() - started)
        for r in batch:
            if r.timestamp_ms > 0:
                m.end_to_end.observe(max(0.0, now - r.timestamp_ms / 1000))
        for end in out.window_ends:
            m.window_age.observe(max(0.0, now - end.timestamp()))
        log.debug(
            "batch_processed",
            records=len(batch),
            valid=out.valid,
            events=out.events,
            dead_letters=sum(out.dead_letters.values()),
            partitions=sorted({f"{r.topic}-{r.partition}" for r in batch}),
            offsets=f"{min(r.offset for r in batch)}..{max(r.offset for r in batch)}",
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _update_lag(self) -> None:
        if time.monotonic() - self._last_lag < LAG_EVERY_S:
            return
        self._last_lag = time.monotonic()
        self.metrics.set_lag(self.source.lag(), self.source.assignment())

    def _serving_model(self) -> Detector | None:
        detector = self.detector()
        if detector is not None and detector.version != self._serving:
            log.info("model_serving", model=detector.name, version=detector.version)
            self.metrics.set_model(detector.name, detector.version, detector.thresholds)
            self._serving = detector.version
        self.health.model_loaded = detector is not None
        return detector

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; every batch consumed is finished, flushed and committed.

        One iteration, with batch N on the scoring thread's network meanwhile: collect and
        decode batch N+1 and queue it for scoring; take N's scores (while behind, only once
        N+2 is queued too: `_depth`); encode N; checkpoint N-1 (flush, then commit); send N.
        The Python stages (poll, decode, encode, send) run beside the network, which
        releases the GIL (or runs in the scoring process).
        """
        log.info("loop_started", max_batch=self.max_batch, max_batch_wait_ms=self.max_batch_wait_ms)
        backoff = 0.5
        flight: _InFlight | None = None  # sent, awaiting acks and commit
        scoring: deque[_Scoring] = deque()  # on the scoring thread, in order
        try:
            while not stop.is_set():
                detector = self._serving_model()
                if detector is None:
                    self.health.beat()
                    stop.wait(0.5)
                    continue
                self.metrics.ready.set(1 if self.health.ready() else 0)
                try:
                    busy = flight is not None or bool(scoring)
                    batch = self.collect(stop, idle_ms=20 if busy else 200)
                    # Swapped only here, between batches, and after the wait for records:
                    # a version promoted while collect() waited scores what it collected.
                    detector = self._serving_model() or detector
                    if batch:  # decoded now, beside N's network; queued behind N (one scorer)
                        scoring.append(self._submit(batch, detector))
                    due = len(scoring) > self._depth() or (bool(scoring) and not batch)
                    scored = self._finish(scoring.popleft()) if due else None
                    # N-1 is settled before N is sent, or when nothing follows it (idle)
                    if flight is not None and (scored is not None or not scoring):
                        done, flight = self._checkpoint(flight, stop), None
                        if not done:
                            break  # stopped during an outage: nothing more is committed
                    if scored is not None:
                        self._send(scored)
                        flight = scored
                    self._update_lag()
                    backoff = 0.5
                except BrokerError as exc:  # broker away: nothing was committed, retry
                    log.warning("broker_error_backing_off", error=str(exc), retry_in_s=backoff)
                    self.health.beat()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
            else:
                self._drain(flight, scoring, stop)
        finally:
            self._scorer.shutdown(wait=True)
        log.info("loop_stopped")

    def _depth(self) -> int:
        """Batches queued for scoring behind the one to finish: two while records are queued
        (the last two batches filled their caps: the scorer never waits for the main
        thread), one while the loop keeps up (a batch is published one collect sooner; one
        full batch after a slow iteration is no backlog yet)."""
        return BEHIND_DEPTH if self._filled >= 2 else 1

    def _drain(
        self, flight: _InFlight | None, scoring: deque[_Scoring], stop: threading.Event
    ) -> None:
        """On stop: the batches in hand are finished, in order, unless the broker is away."""
        if flight is not None and not self._checkpoint(flight, stop):
            return
        while scoring:
            scored = self._finish(scoring.popleft())
            self._send(scored)
            if not self._checkpoint(scored, stop):
                return


def next_offsets(
    batch: list[InRecord], exclude: set[TopicPartition] | None = None
) -> dict[TopicPartition, int]:
    """Per partition, the offset of the next record to read (last processed + 1)."""
    offsets: dict[TopicPartition, int] = {}
    for r in batch:
        tp = (r.topic, r.partition)
        if exclude and tp in exclude:
            continue
        offsets[tp] = max(offsets.get(tp, -1), r.offset + 1)
    return offsets
