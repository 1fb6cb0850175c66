"""A consumer draining a backlog beside one busy Python thread, kafka-python's socket reads
at a given size (issue 14; `kafkaio.transport`). The busy thread stands in for the worker's
main and scoring threads: each `socket.recv` on kafka-python's IO thread gives the lock
away and waits to get it back. Usage (repo root):

    PYTHONPATH=. .venv/bin/python -m benchmarks.study.recv_probe SIZE busy|idle

The TCP transport's read loop is replaced by one reading SIZE per call (kafka-python's own
is the same loop at 4096; with `large_reads.patch` applied, `benchmarks.speed`'s import of
`kafkaio.client` would set its own size, so every size is set here explicitly).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from typing import Any

import kafka.errors as errors
import kafka.net.transport as kafka_transport
from kafka import KafkaConsumer

from benchmarks.speed import fill_topic, messages
from worker.broker import EmbeddedBroker

RECORDS = 30_000


def read_size(size: int) -> None:
    def _sock_recv(self: Any) -> tuple[bytes, Exception | None]:
        received: list[bytes] = []
        while True:
            try:
                data = self._sock.recv(size)
            except (BlockingIOError, InterruptedError):
                return b"".join(received), None
            if not data:
                return b"".join(received), errors.KafkaConnectionError("disconnected")
            received.append(data)

    kafka_transport.KafkaTCPTransport._sock_recv = _sock_recv


def main() -> None:
    size, busy = int(sys.argv[1]), sys.argv[2] == "busy"
    read_size(size)
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    with EmbeddedBroker() as broker:
        tag = uuid.uuid4().hex[:6]
        raw = messages(2000, 128, 1, prefix=tag)
        fill_topic(broker.bootstrap, f"in-{tag}", [raw[i % len(raw)] for i in range(RECORDS)])
        if busy:
            threading.Thread(target=spin, daemon=True).start()
        consumer = KafkaConsumer(
            f"in-{tag}",
            bootstrap_servers=broker.bootstrap,
            group_id=f"g{tag}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 << 20,
            fetch_max_bytes=32 << 20,
        )
        got, started = 0, 0.0
        while got < RECORDS:
            t = time.perf_counter()
            n = sum(len(v) for v in consumer.poll(timeout_ms=1000, max_records=1024).values())
            if n and not started:
                started = t
            got += n
        rate = got / (time.perf_counter() - started)
        stop.set()
        consumer.close()
    print(f"recv {size} {'busy' if busy else 'idle'}: {rate:,.0f} records/s")


if __name__ == "__main__":
    main()
