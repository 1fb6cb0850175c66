"""`make bench`'s measurements delete their topics afterwards: the embedded broker keeps every
record in RAM, and a broker holding GBs serves later measurements slower (issue 14)."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka.admin import KafkaAdminClient

from benchmarks.speed import scratch_tag
from tests.integration.kafka_helpers import produce

pytestmark = pytest.mark.integration


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _wait_gone(bootstrap: str, names: set[str], timeout_s: float = 30) -> set[str]:
    """The names still listed when they are all gone or the deadline passes (a cluster may
    delete asynchronously)."""
    deadline = time.monotonic() + timeout_s
    left = names & _topics(bootstrap)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = names & _topics(bootstrap)
    return left


def test_scratch_tag_deletes_the_topics_named_with_its_tag_and_no_other(
    kafka_bootstrap: str,
) -> None:
    kept = f"kept-{uuid.uuid4().hex[:10]}"
    produce(kafka_bootstrap, kept, [(b"k", b"v")])
    with scratch_tag(kafka_bootstrap) as tag:
        made = {f"in-{tag}", f"co-{tag}", f"relay-{tag}-relay-a"}
        for topic in made:
            produce(kafka_bootstrap, topic, [(b"k", b"v")])
        assert made <= _topics(kafka_bootstrap)
    assert _wait_gone(kafka_bootstrap, made) == set()
    assert kept in _topics(kafka_bootstrap)


def _measurement_that_fails(bootstrap: str) -> str:
    with scratch_tag(bootstrap) as tag:
        produce(bootstrap, f"in-{tag}", [(b"k", b"v")])
        raise RuntimeError(f"worker died on {tag}")


def test_scratch_tag_deletes_its_topics_when_the_measurement_fails(kafka_bootstrap: str) -> None:
    with pytest.raises(RuntimeError, match="worker died") as failure:
        _measurement_that_fails(kafka_bootstrap)
    tag = str(failure.value).rsplit(" ", 1)[-1]
    assert _wait_gone(kafka_bootstrap, {f"in-{tag}"}) == set()
