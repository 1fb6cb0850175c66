"""Integration fixtures: one real Kafka-protocol broker per test session.

Order of preference: `VAEWATCH_KAFKA_BOOTSTRAP_SERVERS` (any external cluster); a
testcontainers Kafka when a Docker engine answers; else the embedded Tansu broker on a
free port. Every test gets its own uuid-named topics and group, and every wait has a deadline.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.model_factory import publish
from vaecore import Detector
from vaewatch.process import StreamTopics


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("VAEWATCH_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if os.environ.get("VAEWATCH_TEST_DOCKER") == "1" and _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from worker.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def topics() -> StreamTopics:
    return StreamTopics.tagged(uuid.uuid4().hex[:10])


@pytest.fixture
def registry(tmp_path: Path, tiny_detector: Detector) -> Path:
    root = tmp_path / "registry"
    publish(tiny_detector, root, "default")
    return root
