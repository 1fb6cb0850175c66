"""How often kafka-python 3.0.12's producer reports a "full" batch (and so writes to its
sender's wake socket): 20,000 sends of 3 kB to 4 partitions on the embedded broker.
Usage (repo root): PYTHONPATH=. .venv/bin/python benchmarks/study/wakeup_count.py
(issue 14, 2026-11-27: 89 new batches, 6,101 "full" replies, so ~6,000 wake-ups.)"""
import time, collections
from worker.broker import EmbeddedBroker
from kafka import KafkaProducer
from kafkaio.partitioner import CachingPartitioner
b = EmbeddedBroker().start()
try:
    time.sleep(1.0)
    p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=5, batch_size=1_000_000,
                      partitioner=CachingPartitioner(), enable_idempotence=True, retries=2147483647)
    val = b"x" * 3000
    keys = [f"s{i%50}".encode() for i in range(50)]
    p.send("out", value=val, key=b"k").get(timeout=30)
    acc = p._accumulator
    orig = acc.append
    c = collections.Counter()
    def app(*a, **k):
        r = orig(*a, **k); c["new"] += r[2]; c["full"] += r[1]; c["n"] += 1; return r
    acc.append = app
    N = 20000
    for i in range(N): p.send("out", value=val, key=keys[i % 50])
    p.flush()
    print(c, acc.config['batch_size'], acc.config['linger_ms'])
    p.close()
finally:
    b.stop()
