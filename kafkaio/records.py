"""The records the worker loop moves, and the two small interfaces it moves them through.

The loop (`worker.loop`) is written against `Source` and `Sink`, not against kafka-python:
`worker.kafka_edge` implements them on a real broker, and unit tests use in-memory fakes.
Errors are typed by what the caller should do: `DeliveryError` and `CommitError` mean the
broker did not confirm something, so the batch must not be committed (and is redelivered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vwbase.errors import BrokerError

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed message, exactly as the broker delivered it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One message to publish. `key` keeps a series on one partition, in order.

    `value` None is a tombstone; `partition` None lets the producer pick it from the key
    (state records name theirs: the input partition the series lives on).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None


class DeliveryError(BrokerError):
    """A produced record was not acknowledged (timeout or broker error): do not commit."""


class CommitError(BrokerError):
    """The offset commit failed (e.g. the partitions were revoked): the batch is redelivered."""


class Source(Protocol):
    """Where input windows come from (a consumer in a consumer group)."""

    def poll(self, timeout_ms: int, max_records: int) -> list[InRecord]:
        """Up to `max_records` records, waiting at most `timeout_ms`; [] when none."""
        ...

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read. Raises CommitError."""
        ...

    def assignment(self) -> set[TopicPartition]:
        """Partitions currently assigned to this member."""
        ...

    def take_revoked(self) -> set[TopicPartition]:
        """Partitions revoked since the last call (records held for them must be dropped)."""
        ...

    def take_assigned(self) -> set[TopicPartition]:
        """Partitions assigned since the last call (a partition assigned back to this member
        keeps the consumer's fetch position, past any records the loop dropped)."""
        ...

    def position(self, partition: TopicPartition) -> int:
        """The offset of the next record this member will read from an assigned partition."""
        ...

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read `partition` from `offset` on (the next poll returns it from there)."""
        ...

    def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition: high-water mark minus committed offset (0 when unknown)."""
        ...

    def close(self) -> None:
        """Leave the group and close the connection."""
        ...


class Sink(Protocol):
    """Where outputs go (a producer with acks=all)."""

    def send(self, record: OutRecord) -> None:
        """Queue one record for delivery (asynchronous)."""
        ...

    def flush(self, timeout_s: float) -> None:
        """Block until every queued record is acknowledged. Raises DeliveryError otherwise."""
        ...

    def close(self) -> None:
        """Flush what is left and close."""
        ...
