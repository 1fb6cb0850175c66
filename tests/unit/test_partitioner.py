"""The producer's partitioner picks the partitions kafka-python's default picks."""

from __future__ import annotations

import pytest
from kafka.partitioner.default import DefaultPartitioner

from kafkaio.client import producer_config
from kafkaio.partitioner import CachingPartitioner
from kafkaio.settings import KafkaSettings

pytestmark = pytest.mark.unit


class Cluster:
    """The two ClusterMetadata calls a partitioner makes."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.partitions[topic]) if topic in self.partitions else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.partitions[topic])


def test_keyed_records_go_where_the_default_partitioner_sends_them() -> None:
    cluster = Cluster({"a": set(range(12)), "b": {0, 1, 2}, "c": {0}})
    ours, theirs = CachingPartitioner(max_keys=50), DefaultPartitioner()
    keys = [f"series-{i}".encode() for i in range(200)] + [b"", b"\x00\xff" * 9]
    for _ in range(2):  # the second pass answers from the remembered hashes
        for topic in cluster.partitions:
            for key in keys:
                expected = theirs.partition(topic, key, key, None, None, cluster)
                assert ours.partition(topic, key, key, None, None, cluster) == expected
    assert 0 < len(ours._hashes) <= 50  # bounded: forgotten when full


def test_a_remembered_hash_follows_a_topic_that_grew() -> None:
    cluster, ours = Cluster({"a": {0, 1}}), CachingPartitioner()
    key = b"pump-17"
    ours.partition("a", key, key, None, None, cluster)
    cluster.partitions["a"] = set(range(7))
    expected = DefaultPartitioner().partition("a", key, key, None, None, cluster)
    assert ours.partition("a", key, key, None, None, cluster) == expected


def test_unkeyed_records_and_unknown_topics_behave_as_the_default() -> None:
    cluster, ours = Cluster({"a": {3, 5}}), CachingPartitioner()
    assert {ours.partition("a", None, None, b"v", b"v", cluster) for _ in range(50)} == {3, 5}
    with pytest.raises(ValueError, match="not found"):
        ours.partition("zz", b"k", b"k", None, None, cluster)


def test_the_producer_uses_it() -> None:
    config = producer_config(KafkaSettings(bootstrap_servers="localhost:9092"))
    assert isinstance(config["partitioner"], CachingPartitioner)
