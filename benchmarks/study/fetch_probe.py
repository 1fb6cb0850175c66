"""Throw-away: how many records one consumer poll gets from Tansu, and how long polls wait."""
import sys, time, uuid
from kafka import KafkaConsumer
from benchmarks.speed import fill_topic, messages
from worker.broker import EmbeddedBroker

ch = int(sys.argv[1]); n = int(sys.argv[2]); part_bytes = int(sys.argv[3]); work = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
with EmbeddedBroker() as broker:
    topic = f"in-{uuid.uuid4().hex[:6]}"
    from kafkaio.client import ensure_topics
    from kafkaio.settings import kafka_settings
    ensure_topics(kafka_settings(broker.bootstrap), [topic], 3)
    fill_topic(broker.bootstrap, topic, messages(n, 128, ch))
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="g"+topic, auto_offset_reset="earliest",
                      enable_auto_commit=False, max_partition_fetch_bytes=part_bytes, fetch_max_bytes=32*1024*1024)
    got = 0; sizes = []; waits = []; t0 = None
    while got < n:
        s = time.perf_counter()
        recs = c.poll(timeout_ms=1000, max_records=int(sys.argv[5]) if len(sys.argv) > 5 else 256)
        w = time.perf_counter() - s
        k = sum(len(v) for v in recs.values())
        if k and t0 is None: t0 = time.perf_counter()
        if t0: sizes.append(k); waits.append(w)
        got += k
        if k: time.sleep(work)
    el = time.perf_counter() - t0
    print(f"{ch} ch, part_bytes {part_bytes}: {n/el:.0f} rec/s, polls {len(sizes)}, empty {sizes.count(0)}, poll wait total {sum(waits):.2f}s of {el:.2f}s; sizes {sizes[:12]}")
    c.close()
