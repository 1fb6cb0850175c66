"""Throw-away diagnostic: is the worker bound by fetch round trips? The same A/B with the
topic filled in 1 MiB producer batches instead of make bench's 256 KiB (Tansu appears to
answer a fetch with one record batch per partition)."""
import sys, tempfile
from pathlib import Path
from kafka import KafkaProducer
import benchmarks.speed as speed
from worker.broker import EmbeddedBroker

def fill_big(bootstrap, topic, raw, batch_size=int(sys.argv[2])):
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=batch_size, acks="all", max_request_size=8 << 20)
    for r in raw:
        p.send(topic, key=r[30:40], value=r)
    p.flush(120); p.close()

if __name__ == "__main__":
    ch = int(sys.argv[1])
    speed.fill_topic = fill_big
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        reg = Path(tmp) / "reg"
        det = speed.build_detector(128, ch); speed.publish_model(det, reg, "m")
        raw = speed.messages(4000, 128, ch)
        for rep in range(2):
            for mode in ("thread", "process"):
                rate, rss, cores = speed.worker_rate(broker.bootstrap, reg, "m", raw, Path(tmp) / f"{mode}.log", broker.pid, {"VAEWATCH_SCORER": mode})
                print(ch, sys.argv[2], mode, round(rate), {k: round(v, 2) for k, v in cores.items()}, flush=True)
