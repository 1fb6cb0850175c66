"""Kafka clients built from `KafkaSettings`: probe, admin, producer, group-less readers.

Client errors become typed errors: `BrokerError` when the cluster cannot be reached or
refuses an operation. The worker's group member and sink (`worker.kafka_edge`) are built on
the same settings mapping; `train --from-topic` and the demo read topics back with
`read_topic_values` / `read_topic_records`.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from kafkaio.partitioner import CachingPartitioner
from kafkaio.records import InRecord
from kafkaio.settings import KafkaSettings
from vwbase.errors import BrokerError

log = structlog.get_logger(__name__)
PROBE_TIMEOUT_S = 5.0


def security_kwargs(settings: KafkaSettings) -> dict[str, Any]:
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


def unreachable(settings: KafkaSettings, exc: Exception) -> BrokerError:
    return BrokerError(
        f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {type(exc).__name__}"
    )


def servers(settings: KafkaSettings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def check_reachable(settings: KafkaSettings, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise `BrokerError` naming the cause unless a bootstrap server accepts a connection.

    kafka-python reports a name that does not resolve, a refused port and a silent host
    alike, as a timeout after 30 s. A plain TCP connection tells them apart in seconds:
    "cannot resolve host 'kafak'", "connection refused", "timed out".
    """
    problems = []
    listed = servers(settings)
    for server in listed:
        host, port = _host_port(server)
        where = f"{server}: " if len(listed) > 1 else ""
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


def _admin(settings: KafkaSettings) -> Any:
    try:
        return KafkaAdminClient(
            bootstrap_servers=servers(settings),
            client_id="vaewatch-admin",
            **security_kwargs(settings),
        )
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def ensure_topics(
    settings: KafkaSettings,
    topics: Sequence[str],
    partitions: int,
    compacted: Sequence[str] = (),
) -> None:
    """Create the topics that do not exist; an existing topic is fine. Those named in
    `compacted` get `cleanup.policy=compact` (a changelog: the latest record per key)."""
    admin = _admin(settings)
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


def partition_counts(settings: KafkaSettings, topics: Sequence[str]) -> dict[str, int]:
    """Partitions of each of `topics` that exists (a missing one is left out, not created:
    only existing topics are described, so a broker that auto-creates topics on a metadata
    request does not create them here)."""
    admin = _admin(settings)
    try:
        existing = [t for t in dict.fromkeys(topics) if t in set(admin.list_topics())]
        if not existing:
            return {}
        described = admin.describe_topics(existing)
        return {d.get("name", d.get("topic")): len(d["partitions"]) for d in described}
    except KafkaError as exc:
        raise BrokerError(f"cannot describe topics {list(topics)}: {type(exc).__name__}") from exc
    finally:
        admin.close()


# Producer record batches of up to ~1 MB (per partition): a quarter of the requests of
# 256 KiB batches. A/B in one run (benchmarks/study/env_ab.py): x1.03 / x1.06 / x1.32
# windows/s for 128 x 1 / 8 / 38; at the same offered rate p50 latency within noise, p99
# medians +7-9% (docs/benchmarks.md, "Producer batches"). Kept under the default broker limit of
# 1,048,588 bytes a record batch (Kafka's message.max.bytes), so a full batch never comes
# back MESSAGE_TOO_LARGE to be split.
PRODUCER_BATCH_BYTES = 1_000_000


def producer_config(
    settings: KafkaSettings, *, delivery_timeout_s: float = 30.0, **overrides: Any
) -> dict[str, Any]:
    """acks=all, tuned for throughput (large batches, short linger), idempotent unless
    settings turn it off (then a producer retry can duplicate a record: still at least
    once, and duplicates carry the same event_id). `delivery_timeout_s`: the caller's
    flush deadline (the worker's `flush_timeout_s`); the client gives up 5 s after it."""
    return {
        "bootstrap_servers": servers(settings),
        "client_id": "vaewatch-producer",
        "acks": "all",
        "enable_idempotence": settings.producer_idempotence,
        "linger_ms": 5,
        "batch_size": PRODUCER_BATCH_BYTES,
        "partitioner": CachingPartitioner(),  # the default's partitions, hashes remembered
        "max_request_size": max(settings.max_message_bytes * 2, 1048576),
        "retries": 2147483647,
        "delivery_timeout_ms": int(delivery_timeout_s * 1000) + 5000,
        **security_kwargs(settings),
        **overrides,
    }


def make_producer(
    settings: KafkaSettings, *, delivery_timeout_s: float = 30.0, **overrides: Any
) -> Any:
    check_reachable(settings)
    try:
        return KafkaProducer(
            **producer_config(settings, delivery_timeout_s=delivery_timeout_s, **overrides)
        )
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def group_less_consumer(settings: KafkaSettings, **overrides: Any) -> Any:
    """A consumer outside any group (manual assignment, no commits) for reading a topic back;
    `overrides` are kafka-python consumer settings."""
    check_reachable(settings)
    try:
        return KafkaConsumer(
            bootstrap_servers=servers(settings),
            enable_auto_commit=False,
            group_id=None,
            **security_kwargs(settings),
            **overrides,
        )
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def read_topic_values(settings: KafkaSettings, topic: str, since_ms: int) -> Iterator[bytes]:
    """Every message value of `topic` from `since_ms` (epoch ms) to the end seen at start."""
    consumer = group_less_consumer(settings)
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
    settings: KafkaSettings, topic: str, min_count: int, timeout_s: float
) -> list[InRecord]:
    """Every record of `topic` from the beginning once `min_count` are there (or the deadline)."""
    consumer = group_less_consumer(settings)
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
