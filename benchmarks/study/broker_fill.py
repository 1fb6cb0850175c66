"""Does the embedded broker slow as it fills? Eight relay drains of 8,000 windows of 128 x 8
on fresh topics, with each drain's topics kept (`keep`) or deleted afterwards (`delete`).
Usage (repo root, machine idle): PYTHONPATH=. .venv/bin/python -m benchmarks.study.broker_fill keep|delete 8
Results: benchmarks/results/broker-fill.txt."""
import sys
import time
import uuid

import benchmarks.speed as speed
from benchmarks.procstat import memory_mb
from worker.broker import EmbeddedBroker

delete = sys.argv[1] == "delete"
reps = int(sys.argv[2])
raw = speed.messages(8000, 128, 8)
with EmbeddedBroker() as b:
    for i in range(reps):
        topic = f"relay-{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        speed.fill_topic(b.bootstrap, topic, raw)
        fill_s = time.perf_counter() - t0
        rate, cpu = speed.io_ceiling(b.bootstrap, topic, len(raw), b.pid)
        rss = memory_mb(b.pid, "VmRSS")
        print(i, f"fill {len(raw)/fill_s:.0f}/s relay {rate:.0f}/s cpu {cpu*1e3:.3f} ms/w broker RSS {rss:.0f} MB", flush=True)
        if delete:
            speed.drop_topics(b.bootstrap, topic)  # the topic and its two relay copies
            time.sleep(1)
            print("  after delete RSS", f"{memory_mb(b.pid, 'VmRSS'):.0f} MB", flush=True)
