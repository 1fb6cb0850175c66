"""The Kafka edge: the only module that imports kafka-python.

`KafkaSource` and `KafkaSink` implement `worker.records.Source` / `Sink`; the loop never
sees the client library. Client errors become typed errors: `BrokerError` (cannot reach
or talk to the cluster), `DeliveryError` (an output was not acknowledged), `CommitError`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from vaewatch.errors import BrokerError, UserInputError
from worker.records import CommitError, DeliveryError, InRecord, OutRecord
from worker.settings import WorkerSettings

log = structlog.get_logger(__name__)
TP = tuple[str, int]
PROBE_TIMEOUT_S = 5.0


def security_kwargs(settings: WorkerSettings) -> dict[str, Any]:
    """The SASL/SSL settings in kafka-python's names; only those that are set."""
    kw: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.sasl_mechanism:
        kw["sasl_mechanism"] = settings.sasl_mechanism
    if settings.sasl_username:
        kw["sasl_plain_username"] = settings.sasl_username
    if settings.sasl_password:
        kw["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(settings, name)
        if value:
            kw[name] = str(value)
    if settings.ssl_password:
        kw["ssl_password"] = settings.ssl_password.get_secret_value()
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_check_hostname"] = settings.ssl_check_hostname
    return kw


def _unreachable(settings: WorkerSettings, exc: Exception) -> BrokerError:
    return BrokerError(
        f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {type(exc).__name__}"
    )


def _servers(settings: WorkerSettings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def check_reachable(settings: WorkerSettings, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise `BrokerError` naming the cause unless a bootstrap server accepts a connection.

    kafka-python reports a name that does not resolve, a refused port and a silent host
    alike, as a timeout after 30 s. A plain TCP connection tells them apart in seconds:
    "cannot resolve host 'kafak'", "connection refused", "timed out".
    """
    problems = []
    servers = _servers(settings)
    for server in servers:
        host, port = _host_port(server)
        where = f"{server}: " if len(servers) > 1 else ""
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            problems.append(f"cannot resolve host {host!r} ({exc.strerror})")
            continue
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as exc:
            problems.append(where + _connect_error(exc, timeout_s))
    raise BrokerError(
        f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {'; '.join(problems)}"
    )


def _connect_error(exc: OSError, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {timeout_s:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    return exc.strerror or type(exc).__name__


def ensure_topics(
    settings: WorkerSettings,
    topics: Sequence[str],
    partitions: int,
    compacted: Sequence[str] = (),
) -> None:
    """Create the topics that do not exist; an existing topic is fine. Those named in
    `compacted` get `cleanup.policy=compact` (a changelog: the latest record per key)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=_servers(settings),
            client_id="vaewatch-admin",
            **security_kwargs(settings),
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            new = [
                NewTopic(
                    t,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"} if t in compacted else {},
                )
                for t in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
            log.info("topics_created", topics=missing, partitions=partitions)
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics {list(topics)}: {type(exc).__name__}") from exc
    finally:
        admin.close()


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
                bootstrap_servers=_servers(settings),
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
            raise _unreachable(settings, exc) from exc
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


def producer_config(settings: WorkerSettings, **overrides: Any) -> dict[str, Any]:
    """acks=all, tuned for throughput (large batches, short linger), idempotent unless
    settings turn it off (then a producer retry can duplicate a record: still at least
    once, and duplicates carry the same event_id)."""
    return {
        "bootstrap_servers": _servers(settings),
        "client_id": "vaewatch-producer",
        "acks": "all",
        "enable_idempotence": settings.producer_idempotence,
        "linger_ms": 5,
        "batch_size": 262144,
        "max_request_size": max(settings.max_message_bytes * 2, 1048576),
        "retries": 2147483647,
        "delivery_timeout_ms": int(settings.flush_timeout_s * 1000) + 5000,
        **security_kwargs(settings),
        **overrides,
    }


def make_producer(settings: WorkerSettings, **overrides: Any) -> Any:
    check_reachable(settings)
    try:
        return KafkaProducer(**producer_config(settings, **overrides))
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc


class KafkaSink:
    """Sends asynchronously; `flush` waits for every ack since the last flush or raises."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._producer = make_producer(settings)
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


def _group_less_consumer(settings: WorkerSettings) -> Any:
    """A consumer outside any group (manual assignment, no commits) for reading a topic back."""
    check_reachable(settings)
    try:
        return KafkaConsumer(
            bootstrap_servers=_servers(settings),
            enable_auto_commit=False,
            group_id=None,
            **security_kwargs(settings),
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc


def read_topic_values(settings: WorkerSettings, topic: str, since_ms: int) -> Iterator[bytes]:
    """Every message value of `topic` from `since_ms` (epoch ms) to the end seen at start."""
    consumer = _group_less_consumer(settings)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        starts = consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            found = starts.get(tp)
            if found is None:
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        ends: dict[Any, int] = {}
        idle_since = time.monotonic()
        while True:
            batches = consumer.poll(timeout_ms=500, max_records=2000)
            for tp in tps:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = int(consumer.highwater(tp))
            for tp, records in batches.items():
                for r in records:
                    if r.offset < ends.get(tp, r.offset + 1):
                        yield r.value
            if batches:
                idle_since = time.monotonic()
            done = len(ends) == len(tps) and all(consumer.position(tp) >= ends[tp] for tp in tps)
            if done or time.monotonic() - idle_since > 5.0:
                return
    finally:
        consumer.close()


def follow_topic(
    settings: WorkerSettings, topic: str, from_beginning: bool, follow: bool, idle_s: float = 3.0
) -> Iterator[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every message of `topic`, from its start or its end.

    Without `follow` it stops once every partition is read to the end it had when the read
    began; with it, it waits for new messages until the caller stops iterating.
    """
    consumer = _group_less_consumer(settings)
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
            ends = [consumer.highwater(tp) for tp in tps]
            at_end = all(
                h is not None and consumer.position(tp) >= h
                for tp, h in zip(tps, ends, strict=True)
            )
            if at_end or time.monotonic() - idle_since > idle_s:
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
    """

    def __init__(self, settings: WorkerSettings, topic: str, timeout_s: float = 60.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer = _group_less_consumer(settings)

    def read(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        tp = TopicPartition(self.topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek_to_beginning(tp)
        out: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                for records in self._consumer.poll(timeout_ms=200, max_records=5000).values():
                    out.extend((r.key or b"", r.value) for r in records)
                high = self._consumer.highwater(tp)
                if high is not None and self._consumer.position(tp) >= high:
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


def assign_from_beginning(consumer: Any, topic: str, deadline: float) -> list[TopicPartition]:
    """Wait (until the monotonic `deadline`) for `topic`'s partitions, assign all of them to a
    group-less `consumer` and seek to the start. Empty when no partition appeared in time."""
    parts: set[int] = set()
    while not parts and time.monotonic() < deadline:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            time.sleep(0.2)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    if tps:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
    return tps


def read_topic_records(
    settings: WorkerSettings, topic: str, min_count: int, timeout_s: float
) -> list[InRecord]:
    """Every record of `topic` from the beginning once `min_count` are there (or the deadline)."""
    consumer = _group_less_consumer(settings)
    deadline = time.monotonic() + timeout_s
    out: list[InRecord] = []
    try:
        if not assign_from_beginning(consumer, topic, deadline):
            return out
        while time.monotonic() < deadline and len(out) < min_count:
            for tp, records in consumer.poll(timeout_ms=300).items():
                out.extend(
                    InRecord(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp)
                    for r in records
                )
        return out
    finally:
        consumer.close()
