"""Ideal-overlap study (issue 14): can any worker design reach 0.8 x the CPU bound here?

The CPU bound (`make bench`) = 2 cores / (relay + broker CPU + codec CPU + score/correct CPU
per window). At 0.8 x that bound a worker must move windows through kafka-python and the
broker at 0.8 x bound windows/s while the same machine also decodes, scores, corrects and
encodes them. This study builds the most favourable worker imaginable out of two
independent parts that never wait for each other: the bare relay (`speed.io_ceiling`'s
loop: poll, produce two outputs, flush, commit; no vaewatch code; 1 or 2 processes in one
group) and, in one or two other processes, the codec + score + correct work of the target
rate, paced in the worker's batches (decode, merge, Detector.score/correct, encode; one
torch thread each, as the worker on 2 CPUs; batches of MAX_BATCH, 256 on 38 channels where
the worker's byte budget keeps them). If the relay beside that load cannot move the target rate, no
design of the worker can reach the target on this broker and client.
Usage (repo root, machine idle):
  .venv/bin/python -m benchmarks.study.ideal_overlap 16000 1,8,38
JSON on the last line (benchmarks/results/ideal-overlap.json)."""

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from typing import Any

import numpy as np
import torch

import benchmarks.speed as speed
from benchmarks.study.scaleout import relays_rate
from worker.broker import EmbeddedBroker

CORES = os.cpu_count() or 1


def load(channels: int, rate: float, ready: Any, stop: Any, out: Any, batch: int = 256) -> None:
    """The worker's non-relay work at `rate` windows/s until `stop`: codec + score + correct."""
    from schemas.messages import ModelRef, SourceRef, decode_window, encode_corrected
    from worker.events import merge_corrected

    torch.set_num_threads(1)
    det = speed.build_detector(128, channels)
    raw = speed.messages(batch, 128, channels, prefix="load")
    model, source = ModelRef(name="m", version="1"), SourceRef(topic="t", partition=0, offset=0)

    def one_batch() -> None:
        windows = [decode_window(r) for r in raw]
        arrays = [w.values for w in windows]
        det.correct(arrays, det.score(arrays))
        for w in windows:
            values, pairs = merge_corrected(w, det.channels, w.values, np.zeros(w.values.shape, bool))
            encode_corrected(w, values, pairs, is_anomaly=False, score=1.0, model=model, source=source)

    one_batch()
    ready.set()
    started, cpu0, batches = time.perf_counter(), time.process_time(), 0
    while not stop.is_set():
        one_batch()
        batches += 1
        lag = started + batches * batch / rate - time.perf_counter()
        if lag > 0:
            time.sleep(lag)
    wall = time.perf_counter() - started
    out.put({"load_rate": batches * batch / wall, "load_cores": (time.process_time() - cpu0) / wall})


def relay_beside_load(
    bootstrap: str, raw: list[bytes], channels: int, rate: float, processes: int,
    loads: int, broker_pid: int,
) -> dict[str, float]:
    """The relay in `processes` processes beside `loads` load processes, each at rate/loads."""
    ctx = mp.get_context("spawn")
    stop, q = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(loads)]
    batch = batch_for(channels)
    ps = [ctx.Process(target=load, args=(channels, rate / loads, r, stop, q, batch)) for r in readies]
    for p in ps:
        p.start()
    for ready in readies:
        ready.wait(120)
    time.sleep(1)
    r = relays_rate(bootstrap, raw, processes, broker_pid)
    stop.set()
    parts = [q.get(timeout=60) for _ in ps]
    for p in ps:
        p.join(30)
    r["load_rate"] = sum(x["load_rate"] for x in parts)
    r["load_cores"] = sum(x["load_cores"] for x in parts)
    return r


def batch_for(channels: int) -> int:
    """The worker's batch under a backlog: MAX_BATCH, or 256 where its byte budget stops growth."""
    return speed.MAX_BATCH if channels < 38 else 256


def main() -> None:
    n = int(sys.argv[1])
    shapes = [int(c) for c in sys.argv[2].split(",")]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(), EmbeddedBroker() as broker:
        assert broker.pid is not None
        for ch in shapes:
            name = f"128x{ch}"
            det = speed.build_detector(128, ch)
            raw = speed.messages(n if ch == 1 else n // 2 if ch < 38 else n // 5, 128, ch)
            row: dict[str, Any] = {"windows": len(raw)}
            row["codec_us_per_window"] = speed.codec_us(raw[:1000], det)
            torch.set_num_threads(1)  # the worker's own count on 2 CPUs
            row["compute_cpu_ms_per_window"] = (
                speed.compute_cpu_per_window(det, 128, ch, batch_for(ch)) * 1000
            )
            topic = f"relay-{uuid.uuid4().hex[:6]}"
            speed.fill_topic(broker.bootstrap, topic, raw)
            row["io_ceiling"], io_cpu = speed.io_ceiling(broker.bootstrap, topic, len(raw), broker.pid)
            row["io_cpu_ms_per_window"] = io_cpu * 1000
            row["cpu_bound"] = speed.cpu_bound(row, CORES)
            target = 0.8 * row["cpu_bound"]
            row["target"] = target
            row["load_cores_needed"] = target * (
                row["codec_us_per_window"] / 1e6 + row["compute_cpu_ms_per_window"] / 1000
            )
            print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
            for k in (1, 2):
                alone = relays_rate(broker.bootstrap, raw, k, broker.pid)
                row[f"relay_{k}proc_alone"] = alone
                print(name, f"relay x{k} alone {alone['rate']:.0f}/s", flush=True)
            for k, loads in ((1, 1), (1, 2), (2, 2)):
                beside = relay_beside_load(broker.bootstrap, raw, ch, target, k, loads, broker.pid)
                beside["ideal_vs_bound"] = min(beside["rate"], beside["load_rate"]) / row["cpu_bound"]
                row[f"relay_{k}proc_beside_{loads}load"] = beside
                print(name, f"relay x{k} beside {loads} load process(es): relay "
                      f"{beside['rate']:.0f}/s, load {beside['load_rate']:.0f}/s on "
                      f"{beside['load_cores']:.2f} cores; target {target:.0f}/s; "
                      f"min / bound {beside['ideal_vs_bound']:.2f}", flush=True)
            out[name] = row
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
