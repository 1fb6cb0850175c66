"""The worker's Kafka edge: its consumer-group source and its sink.

`KafkaSource` and `KafkaSink` implement `kafkaio.records.Source` / `Sink` on the clients
of `kafkaio.client`; the loop never sees the client library. Client errors become typed
errors: `BrokerError` (cannot reach or talk to the cluster), `DeliveryError` (an output was
not acknowledged), `CommitError`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from kafkaio.client import (
    assign_from_beginning,
    group_less_consumer,
    make_producer,
    security_kwargs,
    servers,
    unreachable,
)
from kafkaio.records import CommitError, DeliveryError, InRecord, OutRecord
from kafkaio.settings import KafkaSettings
from vwbase.errors import BrokerError, UserInputError
from worker.settings import WorkerSettings

log = structlog.get_logger(__name__)
TP = tuple[str, int]


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.revoked: set[TP] = set()
        self.assigned: set[TP] = set()
        self.lock = threading.Lock()

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self.lock:
            self.revoked.update((tp.topic, tp.partition) for tp in revoked)
        if revoked:
            log.info(
                "partitions_revoked", partitions=sorted(f"{t.topic}-{t.partition}" for t in revoked)
            )

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.lock:
            self.assigned.update((tp.topic, tp.partition) for tp in assigned)
        if assigned:
            log.info(
                "partitions_assigned",
                partitions=sorted(f"{t.topic}-{t.partition}" for t in assigned),
            )


class KafkaSource:
    """A consumer-group member with manual commits (offsets move only after outputs are acked)."""

    def __init__(self, settings: WorkerSettings, topics: Sequence[str]) -> None:
        self._listener = _Revocations()
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=servers(settings),
                group_id=settings.group_id,
                client_id=f"vaewatch-{settings.group_id}",
                enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_interval_ms=settings.max_poll_interval_ms,
                # bounded fetch buffers: when scoring is slow the consumer simply fetches less
                max_partition_fetch_bytes=min(settings.max_message_bytes * 2, 8 * 1024 * 1024),
                fetch_max_bytes=32 * 1024 * 1024,
                **security_kwargs(settings),
            )
        except KafkaError as exc:
            raise unreachable(settings, exc) from exc
        self._consumer.subscribe(list(topics), listener=self._listener)

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise BrokerError(f"poll failed: {type(exc).__name__}: {exc}") from exc
        out = []
        for tp, records in batches.items():
            for r in records:
                out.append(InRecord(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp))
        return out

    def commit(self, offsets: dict[TP, int]) -> None:
        if not offsets:
            return
        meta = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self._consumer.commit(meta)
        except KafkaError as exc:
            raise CommitError(f"offset commit failed: {type(exc).__name__}") from exc

    def assignment(self) -> set[TP]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def take_revoked(self) -> set[TP]:
        with self._listener.lock:
            revoked, self._listener.revoked = self._listener.revoked, set()
        return revoked

    def take_assigned(self) -> set[TP]:
        with self._listener.lock:
            assigned, self._listener.assigned = self._listener.assigned, set()
        return assigned

    def position(self, partition: TP) -> int:
        try:
            return int(self._consumer.position(TopicPartition(*partition)))
        except KafkaError as exc:
            raise BrokerError(f"position of {partition} unknown: {type(exc).__name__}") from exc

    def seek(self, partition: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(*partition), offset)

    def lag(self) -> dict[TP, int]:
        """High-water mark minus committed offset (end_offsets() is unreliable on Tansu)."""
        out: dict[TP, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            try:
                committed = self._consumer.committed(tp) or 0
            except KafkaError:
                continue
            out[(tp.topic, tp.partition)] = max(0, int(high) - int(committed))
        return out

    def close(self) -> None:
        try:
            self._consumer.close()  # sends LeaveGroup: partitions move at once
        except KafkaError as exc:
            log.warning("consumer_close_failed", error=str(exc))


class KafkaSink:
    """Sends asynchronously; `flush` waits for every ack since the last flush or raises."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._producer = make_producer(settings, delivery_timeout_s=settings.flush_timeout_s)
        self._pending: list[Any] = []

    def send(self, record: OutRecord) -> None:
        try:
            future = self._producer.send(
                record.topic,
                value=record.value,
                key=record.key,
                headers=record.headers or None,
                partition=record.partition,
            )
        except KafkaError as exc:
            raise DeliveryError(f"send to {record.topic} failed: {type(exc).__name__}") from exc
        self._pending.append(future)

    def flush(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        deadline = time.monotonic() + timeout_s
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"flush failed: {type(exc).__name__}") from exc
        for future in pending:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                future.get(timeout=remaining)
            except Exception as exc:  # KafkaTimeoutError, broker errors: nothing is committed
                raise DeliveryError(
                    f"output not acknowledged: {type(exc).__name__}: {exc}"
                ) from exc

    def close(self) -> None:
        try:
            self._producer.close(timeout=10)
        except KafkaError as exc:
            log.warning("producer_close_failed", error=str(exc))


def _at_end(consumer: Any, tps: Sequence[TopicPartition]) -> bool:
    """Every partition read up to the high-water mark the broker last reported (unknown
    until a fetch answered: not at the end yet)."""
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None or consumer.position(tp) < high:
            return False
    return True


def follow_topic(
    settings: KafkaSettings, topic: str, from_beginning: bool, follow: bool, idle_s: float = 3.0
) -> Iterator[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every message of `topic`, from its start or its end.

    Without `follow` it stops once every partition is read to the end it had when the read
    began; with it, it waits for new messages until the caller stops iterating.
    """
    consumer = group_less_consumer(settings)
    try:
        tps = assign_from_beginning(consumer, topic, time.monotonic() + 10.0)
        if not tps:
            raise UserInputError(f"topic {topic!r} does not exist (or has no partitions yet)")
        if not from_beginning:
            consumer.seek_to_end(*tps)
        idle_since = time.monotonic()
        while True:
            batches = consumer.poll(timeout_ms=500, max_records=1000)
            for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                for r in records:
                    yield tp.partition, r.offset, r.value
            if batches:
                idle_since = time.monotonic()
            if follow:
                continue
            if _at_end(consumer, tps) or time.monotonic() - idle_since > idle_s:
                return
    except KafkaError as exc:
        raise BrokerError(f"reading {topic} failed: {type(exc).__name__}") from exc
    finally:
        consumer.close()


class StateChangelog:
    """Reads one partition of the per-series state changelog from its start to its end.

    Its own group-less consumer (the worker's group consumer never reads the changelog).
    The end is the high-water mark the broker reports once the first fetch answers
    (end_offsets() is unreliable on Tansu); a partition that does not answer within
    `timeout_s` is a broker problem, raised as BrokerError (the loop backs off, retries).
    Fetches wait at most 10 ms for data (kafka-python's default, 500 ms, made every empty
    partition cost about a second, which a new partition's first window waited for).
    """

    def __init__(self, settings: WorkerSettings, topic: str, timeout_s: float = 60.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer = group_less_consumer(settings, fetch_max_wait_ms=10)

    def read(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        tp = TopicPartition(self.topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek_to_beginning(tp)
        out: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                for records in self._consumer.poll(timeout_ms=50, max_records=5000).values():
                    out.extend((r.key or b"", r.value) for r in records)
                if _at_end(self._consumer, [tp]):
                    return out
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"state changelog {self.topic}-{partition} not read to its end "
                        f"in {self.timeout_s:.0f}s ({len(out)} records so far)"
                    )
        except KafkaError as exc:
            raise BrokerError(f"state changelog read failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        with contextlib.suppress(KafkaError):
            self._consumer.close()
