"""Scale-out study (issue 14): how close to the CPU bound can anything on this broker and
client get on 2 cores? One embedded broker, per shape, in one run:
  - the CPU bound exactly as `make bench` computes it (relay + codec + score/correct CPU);
  - the bare kafka-python relay (`speed.io_ceiling`'s loop: poll, send 2 outputs, flush,
    commit; no vaewatch code) in 1, 2 and 4 processes of one group, each against the relay's
    own CPU bound (2 cores / relay CPU a window): the best utilisation the I/O path alone
    reaches with waits overlapped by other processes;
  - the worker: 1 process with the scoring process (the default), and 2, 3, 4 processes
    (scoring thread), and 2 processes with the scoring process, each against the CPU bound.
Usage (repo root, machine idle):
  .venv/bin/python -m benchmarks.study.scaleout 16000 1,8,38 > benchmarks/results/scaleout.txt
JSON on the last line (benchmarks/results/scaleout.json is that line)."""

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import torch

import benchmarks.speed as speed
from benchmarks.procstat import CpuMeter
from kafkaio.client import ensure_topics
from kafkaio.settings import kafka_settings
from vwbase.threads import apply_torch_threads
from worker.broker import EmbeddedBroker

CORES = os.cpu_count() or 1


def relay(bootstrap: str, topic: str, group: str, out: Any) -> None:
    """One bare relay process: speed.io_ceiling's loop until 3 s pass without a record.
    Puts ("first", t) at its first record, then (windows, first, last, own CPU seconds
    between its first and last record)."""
    from kafka import KafkaConsumer, KafkaProducer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )
    producer = KafkaProducer(  # 256 KiB batches: io_ceiling's relay when this study ran
        bootstrap_servers=bootstrap, linger_ms=5, batch_size=262144, acks="all"
    )
    done, first, last, idle_since, cpu0, cpu1 = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    while True:
        got = 0
        for records in consumer.poll(timeout_ms=200, max_records=256).values():
            if not first:
                first, cpu0 = time.time(), time.process_time()
                out.put(("first", first))
            for r in records:
                producer.send(f"{topic}-a", key=r.key, value=r.value)
                producer.send(f"{topic}-b", key=r.key, value=r.value)
            got += len(records)
        if got:
            producer.flush()
            consumer.commit()
            last, cpu1, done, idle_since = time.time(), time.process_time(), done + got, 0.0
        elif first:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 3:
                break
    out.put((done, first, last, cpu1 - cpu0))
    consumer.close()
    producer.close()


def relays_rate(bootstrap: str, raw: list[bytes], processes: int, broker_pid: int) -> dict[str, float]:
    """windows/s of `processes` relays in one group on a pre-filled topic (4 partitions a
    process), and their + the broker's CPU a window (the broker's from the first relay's
    first record until all are done, 3 idle seconds included)."""
    topic = f"rl-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_settings(bootstrap), [topic], 4 * processes)
    speed.fill_topic(bootstrap, topic, raw)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=relay, args=(bootstrap, topic, f"g-{topic}", q)) for _ in range(processes)]
    for p in procs:
        p.start()
    meter = CpuMeter({"broker": broker_pid})
    metering = False
    results = []
    while len(results) < processes:
        item = q.get(timeout=600)
        if item[0] == "first":
            if not metering:  # from the first relay's first record
                meter.start()
                metering = True
            continue
        results.append(item)
    broker_cpu = meter.stop()["broker"]
    for p in procs:
        p.join(30)
    done = sum(r[0] for r in results)
    span = max(r[2] for r in results) - min(r[1] for r in results)
    cpu = broker_cpu + sum(r[3] for r in results)
    return {
        "rate": done / span,
        "cpu_ms_per_window": cpu / done * 1000,
        "windows": done,
        "broker_cores": broker_cpu / meter.wall_s,
        "relay_cores": sum(r[3] for r in results) / span,
    }


def main() -> None:
    n = int(sys.argv[1])
    shapes = [int(c) for c in sys.argv[2].split(",")]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        assert broker.pid is not None
        for ch in shapes:
            name = f"128x{ch}"
            det = speed.build_detector(128, ch)
            reg = Path(tmp) / f"reg{ch}"
            speed.publish_model(det, reg, "m")
            raw = speed.messages(n if ch == 1 else n // 2 if ch < 38 else n // 5, 128, ch)
            row: dict[str, Any] = {"windows": len(raw)}
            row["codec_us_per_window"] = speed.codec_us(raw[:1000], det)
            torch.set_num_threads(CORES)
            _, _, all_cpu = speed.compute_ceiling(det, 128, ch)
            torch.set_num_threads(apply_torch_threads().threads)
            own = speed.compute_cpu_per_window(det, 128, ch, speed.MAX_BATCH)
            row["compute_cpu_ms_per_window"] = min(all_cpu, own) * 1000
            topic = f"relay-{uuid.uuid4().hex[:6]}"
            speed.fill_topic(broker.bootstrap, topic, raw)
            row["io_ceiling"], io_cpu = speed.io_ceiling(broker.bootstrap, topic, len(raw), broker.pid)
            row["io_cpu_ms_per_window"] = io_cpu * 1000
            row["cpu_bound"] = speed.cpu_bound(row, CORES)
            relay_bound = CORES / io_cpu
            print(name, {k: round(v, 3) for k, v in row.items()}, "relay bound", round(relay_bound), flush=True)
            for k in (1, 2, 4):
                r = relays_rate(broker.bootstrap, raw, k, broker.pid)
                r["vs_relay_bound"] = r["rate"] / relay_bound
                row[f"relay_{k}proc"] = r
                print(name, f"relay x{k}", {a: round(b, 3) for a, b in r.items()}, flush=True)
            runs: list[tuple[str, int, str]] = [
                ("process", 1, "worker_1proc_process"),
                ("thread", 2, "workers_2proc_thread"),
                ("thread", 3, "workers_3proc_thread"),
                ("thread", 4, "workers_4proc_thread"),
                ("process", 2, "workers_2proc_process"),
            ]
            for scorer, k, key in runs:
                if k == 1:
                    rate, _, cores = speed.worker_rate(
                        broker.bootstrap, reg, "m", raw, Path(tmp) / f"{key}.log", broker.pid,
                        {"VAEWATCH_SCORER": scorer},
                    )
                else:
                    rate, cores = speed.workers_rate(
                        broker.bootstrap, reg, "m", raw, Path(tmp) / f"{key}-{ch}.log",
                        broker.pid, k, scorer=scorer,
                    )
                gap = speed.bound_gap(rate, cores, row["cpu_bound"], CORES)
                row[key] = {"rate": rate, "vs_cpu_bound": rate / row["cpu_bound"], "cores": cores, **gap}
                print(name, key, round(rate), f"{rate / row['cpu_bound']:.2f} of the bound",
                      f"eff {gap['cpu_efficiency']:.2f} x util {gap['utilisation']:.2f}",
                      {a: round(b, 2) for a, b in cores.items()}, flush=True)
            out[name] = row
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
