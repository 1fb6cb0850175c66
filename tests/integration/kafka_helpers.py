"""Small real-broker helpers for tests: produce, read a topic to a count, run workers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from kafkaio.client import assign_from_beginning
from vaewatch.process import StreamTopics, worker_env
from vaewatch.process import start_worker as vaewatch_worker

REPO = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(30)
    producer.close()


def window_id(record: Any) -> str:
    return str(orjson.loads(record.value)["window_id"])


def read_topic(
    bootstrap: str,
    topic: str,
    min_count: int,
    timeout_s: float = 60.0,
    unique: Callable[[Any], str] | None = None,
) -> list[Any]:
    """Every record of `topic` from the beginning, once at least `min_count` are there.

    With `unique`, `min_count` counts distinct keys (duplicates from redeliveries do not
    count), so a read after kills waits for every distinct window, not just as many records.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout_s
        assign_from_beginning(consumer, topic, deadline)
        records: list[Any] = []
        keys: set[str] = set()
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
                if unique:
                    keys.update(unique(r) for r in batch)
            if (len(keys) if unique else len(records)) >= min_count:
                # one more short poll so that extra (duplicate) records are seen too
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited {self.proc.returncode}: {self.log_text()[-2000:]}"
                )
            time.sleep(0.2)
        raise AssertionError(
            f"{text!r} not in worker log after {timeout}s: {self.log_text()[-2000:]}"
        )


def start_worker(
    bootstrap: str, topics: StreamTopics, registry: Path, log: Path, **extra: str
) -> WorkerProcess:
    """A worker on the fixture's topics: CPU, one worker process, one torch thread, a fast
    model reload, and 4 partitions per topic it creates (`extra` overrides any of them).
    One process, because these tests kill, count and read one group member each; several
    processes under a supervisor: tests/integration/test_worker_processes.py."""
    test_settings = {
        "VAEWATCH_DEVICE": "cpu",
        "VAEWATCH_PROCESSES": "1",
        "VAEWATCH_RELOAD_INTERVAL_S": "0.5",
        "VAEWATCH_TOPIC_PARTITIONS": "4",
        "OMP_NUM_THREADS": "1",
        **extra,
    }
    env = worker_env(bootstrap, registry, topics, "default", test_settings)
    return WorkerProcess(vaewatch_worker(env, log, append=True, cwd=REPO), log, env)
