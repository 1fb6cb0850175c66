"""The processing loop: poll, micro-batch, score, publish, checkpoint. Nothing lost.

Checkpoint (at-least-once, the contract's delivery promise), once per micro-batch:
  1. every output of the batch (corrected windows, events, dead letters) is sent;
  2. the sink is flushed: every output must be acknowledged by the broker (acks=all),
     or `DeliveryError` is raised and nothing is committed;
  3. only then the offsets are committed: per partition, last processed offset + 1.
A crash anywhere before 3 means the batch is consumed again: duplicates are possible,
losses are not, and a redelivered window yields the same `event_id`.

Backpressure: the loop is synchronous (poll -> process -> flush -> commit), so at most one
micro-batch (MAX_BATCH records) is in memory; when scoring is slower than input, the
consumer simply polls less often and its bounded fetch buffers stop growing.
Rebalances: records of partitions revoked during a poll are dropped before processing;
the partition's new owner reads them from the last committed offset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from vaecore import Detector
from vaewatch.errors import BrokerError
from worker.observability import Health, Metrics
from worker.pipeline import BatchOutput, Topics, process_batch
from worker.records import (
    CommitError,
    DeliveryError,
    InRecord,
    Sink,
    Source,
    TopicPartition,
)

log = structlog.get_logger(__name__)
LAG_EVERY_S = 5.0


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
    ) -> None:
        self.source = source
        self.sink = sink
        self.detector = detector
        self.topics = topics
        self.max_batch = max_batch
        self.max_batch_wait_ms = max_batch_wait_ms
        self.max_message_bytes = max_message_bytes
        self.flush_timeout_s = flush_timeout_s
        self.metrics = metrics or Metrics()
        self.health = health or Health()
        self._last_lag = 0.0
        self._serving: str | None = None

    # --- collecting -------------------------------------------------------------------
    def collect(self, stop: threading.Event) -> list[InRecord]:
        """Up to max_batch records, waiting at most max_batch_wait_ms after the first one."""
        batch: list[InRecord] = []
        deadline: float | None = None
        while len(batch) < self.max_batch and not stop.is_set():
            if deadline is None:
                timeout_ms = 200  # idle: wake regularly for heartbeats, health and stop
            else:
                timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            batch.extend(self.source.poll(timeout_ms, self.max_batch - len(batch)))
            self.health.beat()
            self.health.assigned = bool(self.source.assignment())
            revoked = self.source.take_revoked()
            if revoked:
                batch = [r for r in batch if (r.topic, r.partition) not in revoked]
            if batch and deadline is None:
                deadline = time.monotonic() + self.max_batch_wait_ms / 1000
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not batch:
                break  # nothing arrived: return to the caller (it checks stop and lag)
        return batch

    # --- one batch --------------------------------------------------------------------
    def process(
        self, batch: list[InRecord], detector: Detector, stop: threading.Event | None = None
    ) -> BatchOutput | None:
        """Steps 1-3 of the checkpoint. None when stopped before the outputs were acknowledged."""
        started = time.perf_counter()
        out = process_batch(batch, detector, self.topics, self.max_message_bytes)
        if not self._publish(out, stop or threading.Event()):
            return None
        offsets = next_offsets(batch, exclude=self.source.take_revoked())
        try:
            self.source.commit(offsets)
        except CommitError as exc:  # e.g. a rebalance: the new owner re-reads these records
            log.warning("commit_failed", error=str(exc), partitions=len(offsets))
        self._observe(batch, out, started)
        return out

    def _publish(self, out: BatchOutput, stop: threading.Event) -> bool:
        """Send and flush until every output is acknowledged, backing off while the broker is away.

        A failed flush re-sends the whole batch: consumers may see duplicates (identical
        event_ids), never a gap. Returns False if asked to stop before success.
        """
        delay = 0.5
        while True:
            try:
                for record in out.records:
                    self.sink.send(record)
                self.sink.flush(self.flush_timeout_s)
                return True
            except DeliveryError as exc:
                log.warning("publish_failed_retrying", error=str(exc), retry_in_s=delay)
                self.health.beat()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)

    def _observe(self, batch: list[InRecord], out: BatchOutput, started: float) -> None:
        m = self.metrics
        now = time.time()
        m.consumed.inc(len(batch))
        m.corrected.inc(out.valid)
        m.events.inc(out.events)
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
        for (topic, partition), lag in self.source.lag().items():
            self.metrics.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def _serving_model(self) -> Detector | None:
        detector = self.detector()
        if detector is not None and detector.version != self._serving:
            log.info("model_serving", model=detector.name, version=detector.version)
            self.metrics.set_model(detector.name, detector.version)
            self._serving = detector.version
        self.health.model_loaded = detector is not None
        return detector

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; the batch in hand is always finished, flushed and committed."""
        log.info("loop_started", max_batch=self.max_batch, max_batch_wait_ms=self.max_batch_wait_ms)
        backoff = 0.5
        while not stop.is_set():
            detector = self._serving_model()  # swapped only here, between batches
            if detector is None:
                self.health.beat()
                stop.wait(0.5)
                continue
            self.metrics.ready.set(1 if self.health.ready() else 0)
            try:
                batch = self.collect(stop)
                if batch:
                    self.process(batch, detector, stop)
                self._update_lag()
                backoff = 0.5
            except BrokerError as exc:  # broker away: nothing was committed, retry with backoff
                log.warning("broker_error_backing_off", error=str(exc), retry_in_s=backoff)
                self.health.beat()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        log.info("loop_stopped")


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


def utc_now() -> datetime:
    return datetime.now(UTC)
