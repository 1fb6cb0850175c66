"""Kafka's key partitioning with each key's hash remembered.

kafka-python's `DefaultPartitioner` hashes every record's key with a pure-Python murmur2
(~2 µs for an 18-byte series id) and sorts the topic's partitions for every record: about 5 µs
of the worker's main thread per record sent, 4% of its samples on 128 x 1 windows (py-spy,
`make bench --profile`, 2026-11-26 21:41Z). Series ids repeat, so the hash is kept per key;
the partition chosen is the same as the Java client's and kafka-python's (a test compares
them), so keyed order per series is unchanged. Records without a key go to the default
partitioner (a random available partition).
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner.default import DefaultPartitioner, murmur2

MAX_KEYS = 1 << 16  # remembered hashes; all are forgotten when full (one dict, no LRU bookkeeping)


class CachingPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """`DefaultPartitioner` with murmur2(key) remembered for up to `max_keys` keys."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._hashes: dict[bytes, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        partitions = cluster.partitions_for_topic(topic) if serialized_key is not None else None
        if not partitions:  # no key, or an unknown topic: the default's answer (or error)
            return int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
        hashed = self._hashes.get(serialized_key)  # type: ignore[arg-type]
        if hashed is None:
            if len(self._hashes) >= self.max_keys:
                self._hashes.clear()
            hashed = self._hashes[serialized_key] = murmur2(serialized_key) & 0x7FFFFFFF  # type: ignore[index]
        return int(sorted(partitions)[hashed % len(partitions)])
