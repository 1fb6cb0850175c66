"""`make bench`: the worker's speed against its own limits, all measured in one run.

For each window shape (128x1 NAB-like, 128x8 SKAB-like, 128x38 server-metrics-like):
  io_ceiling       bare kafka-python relay: consume, produce two outputs, commit (no parsing)
  codec            decode + validate + encode cost alone (µs per window)
  compute_ceiling  Detector.score + correct on pre-built arrays, best batch size
  worker           `vaewatch worker` end to end on a pre-filled topic (validate, batch, score,
                   correct, publish, commit), peak RSS, with the scoring thread
                   (`VAEWATCH_SCORER=thread`); worker_process_scorer: the same with the
                   scoring process (`process`, issue 14), cores used including the child;
                   every row runs one process (`VAEWATCH_PROCESSES=1`, the default) but
  worker_auto      `VAEWATCH_PROCESSES=auto` (one worker process per usable CPU), in each
                   repetition beside the one-process scoring-process row
  latency          produce -> corrected-window publish, p50/p99, at 50% and 90% of the worker's
                   max (the default: one process, scoring process)
Reported as windows/s and as the ratio worker / min(io_ceiling, compute_ceiling), beside two
bounds computed from the same run: the sequential bound (relay, codec and compute one after
another) and the CPU bound (every core busy with the CPU seconds one window costs: relay incl.
the broker, codec, score + correct, the last at the least of all-core torch at its best
batch and the worker's own torch threads at its batch size); cpu_bound / min(ceilings) is
the best ratio any design could reach on this machine.
The bound's parts (codec, compute, relay) and the default worker are measured `--repeat`
times per shape (3), interleaved, and reported as medians (each run under `repeats` in the
JSON): one measurement on this shared machine moves by +-20% from minute to minute.
Synthetic sine+noise windows; an untrained model with thresholds calibrated on its own
scores (speed does not depend on training, only on shapes and how many points get corrected).
GPU: not measured on this machine (no CUDA device); the same command measures it where present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import profile
from benchmarks.procstat import CpuMeter, children, descendants, memory_mb
from kafkaio.client import PRODUCER_BATCH_BYTES
from modelstore.artifact import save_artifact
from modelstore.registry import Registry
from schemas.messages import (
    ModelRef,
    SourceRef,
    decode_window,
    encode_corrected,
    encode_window,
)
from training.job import TrainOptions, smoothing_scales
from vaecore import ChannelScaler, ConvVAE, Detector, Thresholds, VAEConfig
from vaecore.calibration import quantile_threshold, standardise_scales
from vaecore.device import select_device
from vaewatch.process import StreamTopics, worker_env
from vaewatch.process import start_worker as vaewatch_worker
from vwbase.threads import apply_torch_threads
from worker.events import merge_corrected
from worker.scorer_process import choose_scorer
from worker.settings import WorkerSettings

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SHAPES = [(128, 1), (128, 8), (128, 38)]
MAX_BATCH = WorkerSettings.model_fields["max_batch"].default  # the worker's batch size


def synthetic(n: int, window: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(window)[None, :, None] + rng.integers(0, 1000, (n, 1, 1))
    phase = np.linspace(0, 3, channels)[None, None, :]
    return np.sin(2 * np.pi * t / 50 + phase) + 0.1 * rng.standard_normal((n, window, channels))


def build_detector(window: int, channels: int, device: str = "auto") -> Detector:
    """The shipped architecture (TrainOptions' window, latent size) for `channels` channels.

    Messages of `window` steps longer than the model's window are scored in model-window
    tiles, as in production, and step scores are smoothed as a trained model's default with
    k = one model window (a trained model takes its data's period, at least that): two
    triangular scales, put in units of their own thresholds on the calibration windows.
    """
    torch.manual_seed(0)
    opts = TrainOptions()
    names = tuple(f"ch_{i}" for i in range(channels))
    calib = synthetic(64, window, channels, seed=1)
    scaler = ChannelScaler.fit(calib)
    det = Detector(
        ConvVAE(
            VAEConfig(
                n_channels=channels,
                window=min(window, opts.window),
                latent_dim=opts.latent_dim,
                beta=opts.beta,
                variance=opts.variance,
            )
        ),
        scaler,
        names,
        device=select_device(device),
        smoothing=opts.window,
        scales=smoothing_scales(opts, opts.window),
    )
    det = standardise_scales(det, det.point_scores(list(calib)), 0.001, "quantile")
    scores = det.score(list(calib))
    steps = np.concatenate([s.step for s in scores])
    points = np.concatenate([s.point for s in scores])
    point = np.array([quantile_threshold(points[:, c], 0.001) for c in range(channels)])
    return det.with_thresholds(Thresholds(quantile_threshold(steps, 0.001), point))


def messages(n: int, window: int, channels: int, prefix: str = "") -> list[bytes]:
    """n encoded input windows; `prefix` keeps window ids apart between runs on one topic."""
    values = synthetic(n, window, channels, seed=2)
    names = [f"ch_{i}" for i in range(channels)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        encode_window(
            f"{prefix}s{i % 50}/{i}", f"s{i % 50}", start + timedelta(minutes=i), 60000, names, v
        )
        for i, v in enumerate(values)
    ]


DRAIN_BYTES = 200 * 1024 * 1024  # at most this much input per drain (the broker keeps it in RAM)


def drain_windows(least: int, window: int, channels: int) -> int:
    """Windows per drain: `least`, or 8 full batches where they fit in DRAIN_BYTES. A worker's
    batches grow from 256 to MAX_BATCH while records are queued (3,840 windows to reach
    4,096): a drain of a few batches measures the ramp, not the steady state."""
    size = len(messages(1, window, channels)[0])
    return max(least, min(8 * int(MAX_BATCH), DRAIN_BYTES // size))


@contextmanager
def scratch_tag(bootstrap: str) -> Iterator[str]:
    """A fresh tag for one measurement's topics; on leaving, every topic named with it is
    deleted. The embedded broker keeps every record in RAM: kept, eight relay drains of
    128 x 8 grew it by 0.48 GB each, to 3.8 GB, and after the fourth its fill rate fell from
    ~8,500 to ~5,000 windows/s and its relay cost rose from 0.24-0.25 to 0.30-0.32 CPU-ms a
    window, so a measurement late in a run was slower than the same one early
    (`benchmarks/results/broker-fill.txt`). Deleted, they stay flat."""
    tag = uuid.uuid4().hex[:8]
    try:
        yield tag
    finally:
        drop_topics(bootstrap, tag)


def drop_topics(bootstrap: str, tag: str) -> None:
    """Delete every topic whose name holds `tag`; a broker that refuses only warns (the
    measurement is done by then)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = None
    try:  # a broker that is gone must not hide the measurement's own error
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        names = [t for t in admin.list_topics() if tag in t]
        if names:
            admin.delete_topics(names, timeout_ms=30_000)
    except KafkaError as exc:
        print(f"warning: topics of {tag} not deleted: {exc!r}", file=sys.stderr)
    finally:
        if admin is not None:
            admin.close()


def window_id(i: int, prefix: str = "") -> str:
    """The id `messages(..., prefix)` gives its i-th window (no decoding needed)."""
    return f"{prefix}s{i % 50}/{i}"


def codec_us(raw: list[bytes], detector: Detector) -> float:
    model, source = ModelRef(name="m", version="1"), SourceRef(topic="t", partition=0, offset=0)
    started = time.perf_counter()
    for r in raw:
        w = decode_window(r)
        values, pairs = merge_corrected(
            w, detector.channels, w.values, np.zeros(w.values.shape, bool)
        )
        encode_corrected(w, values, pairs, is_anomaly=False, score=1.0, model=model, source=source)
    return (time.perf_counter() - started) / len(raw) * 1e6


def _time_compute(
    detector: Detector, window: int, channels: int, batch: int
) -> tuple[float, float]:
    """Score + correct in batches of `batch` for about two seconds, with torch's current
    thread count: windows/s and CPU seconds per window (all of the process's threads)."""
    windows = list(synthetic(batch, window, channels, seed=3))
    detector.correct(windows, detector.score(windows))  # warm-up
    reps, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < 2.0:
        detector.correct(windows, detector.score(windows))
        reps += 1
    done = reps * batch
    return done / (time.perf_counter() - started), (time.process_time() - cpu) / done


def compute_ceiling(detector: Detector, window: int, channels: int) -> tuple[float, int, float]:
    """Best windows/s of score + correct over batch sizes, that batch, and its CPU s/window."""
    best, best_batch, best_cpu = 0.0, 0, 0.0
    for batch in sorted({64, 256, 1024, int(MAX_BATCH)}):
        rate, cpu = _time_compute(detector, window, channels, batch)
        if rate > best:
            best, best_batch, best_cpu = rate, batch, cpu
    return best, best_batch, best_cpu


def compute_cpu_per_window(detector: Detector, window: int, channels: int, batch: int) -> float:
    """CPU seconds per window of score + correct with torch's current thread count, in
    batches of `batch`."""
    return _time_compute(detector, window, channels, batch)[1]


def window_key(raw: bytes) -> bytes:
    """The Kafka key the benchmarks give an encoded window: its window_id, so windows spread
    evenly over the partitions whatever their series (the contract keys by series_id; with
    few series one partition may carry more than its share). Read from the bytes: the sender
    must not spend its time decoding. Before 2026-11-27 the key was bytes 30-40 of the
    message, which for ids with a prefix ("lat50-...") were the same for every window: every
    paced window of a latency run went to one partition, so one worker of a group."""
    start = raw.index(b'"window_id":"') + 13
    return raw[start : raw.index(b'"', start)]


def fill_topic(bootstrap: str, topic: str, raw: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=262144, acks="all"
    )
    for r in raw:
        producer.send(topic, key=window_key(r), value=r)
    producer.flush(120)
    producer.close()


def io_ceiling(bootstrap: str, topic: str, n: int, broker_pid: int) -> tuple[float, float]:
    """consume -> produce 2 outputs -> commit, no parsing: what kafka-python can move here.

    Returns windows/s and the CPU seconds per window it cost (this process + the broker).
    """
    from kafka import KafkaConsumer, KafkaProducer

    group = f"relay-{uuid.uuid4().hex[:6]}"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = KafkaProducer(  # the worker's batching (kafkaio.client.producer_config)
        bootstrap_servers=bootstrap, linger_ms=5, batch_size=PRODUCER_BATCH_BYTES, acks="all"
    )
    meter = CpuMeter({"relay": os.getpid(), "broker": broker_pid})
    done, started = 0, None
    deadline = time.monotonic() + 120
    while done < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=256).values():
            if started is None:
                started = time.perf_counter()
                meter.start()
            for r in records:
                producer.send(f"{topic}-relay-a", key=r.key, value=r.value)
                producer.send(f"{topic}-relay-b", key=r.key, value=r.value)
            done += len(records)
        producer.flush()
        consumer.commit()
    seconds = time.perf_counter() - (started or time.perf_counter())
    cpu = sum(meter.stop().values()) if started is not None else float("nan")
    consumer.close()
    producer.close()
    return done / max(seconds, 1e-9), cpu / max(done, 1)


def cpu_bound(row: dict[str, Any], cores: int) -> float:
    """Windows/s if every core were busy with the CPU work one window costs (relay incl. the
    broker, codec, score + correct) and nothing else: no scheduling can beat this here."""
    per_window = (row["io_cpu_ms_per_window"] + row["compute_cpu_ms_per_window"]) / 1000 + row[
        "codec_us_per_window"
    ] / 1e6
    return float(cores / per_window)


def bound_gap(
    rate: float, cores_used: dict[str, float], bound: float, cores: int
) -> dict[str, float]:
    """Why a worker run is below the CPU bound, as two factors whose product is rate / bound:
    `cpu_efficiency` = the CPU a window costs in the bound over what it cost in the run
    (worker, its scoring process and the broker; not this benchmark's own reader of the
    outputs, which the bound does not count either), and `utilisation` = the cores those
    processes kept busy over the machine's. Below-1 efficiency is work the bound does not
    count (smoothing, state, episodes, the transfer to the scoring process, thread
    switching); below-1 utilisation is cores left idle by the product (waits between the
    stages) or taken by the reader."""
    used = sum(v for k, v in cores_used.items() if k != "reader")
    cpu_ms_per_window = used / rate * 1000
    bound_ms_per_window = cores / bound * 1000
    return {
        "cpu_ms_per_window": cpu_ms_per_window,
        "bound_cpu_ms_per_window": bound_ms_per_window,
        "cpu_efficiency": bound_ms_per_window / cpu_ms_per_window,
        "utilisation": used / cores,
    }


def publish_model(detector: Detector, root: Path, name: str) -> None:
    tmp = root / ".build" / name
    save_artifact(detector, tmp, name=name, version="0", training_data={}, metrics={})
    reg = Registry(root)
    reg.promote(name, reg.publish(name, tmp))


def start_worker(
    bootstrap: str,
    registry: Path,
    model: str,
    tag: str,
    log: Path,
    env_extra: Mapping[str, str | None] | None = None,
) -> subprocess.Popen[bytes]:
    """A worker on the topics of `tag` (`StreamTopics.tagged`); workers started with the
    same tag form one consumer group. One worker process (`VAEWATCH_PROCESSES=1`) unless
    `env_extra` says otherwise; it sets (or, with None, unsets) variables."""
    extra: dict[str, str | None] = {
        "VAEWATCH_LOG_LEVEL": "WARNING",
        "VAEWATCH_PROCESSES": "1",  # one process: every row but `worker_auto` measures one
        **(env_extra or {}),
    }
    env = worker_env(bootstrap, registry, StreamTopics.tagged(tag), model, extra)
    return vaewatch_worker(env, log)


@contextmanager
def running_worker(
    bootstrap: str,
    registry: Path,
    model: str,
    tag: str,
    log: Path,
    env_extra: Mapping[str, str | None] | None = None,
    stop_timeout_s: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """`start_worker`, stopped with SIGTERM (and waited for) on leaving, also on an error."""
    proc = start_worker(bootstrap, registry, model, tag, log, env_extra)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=stop_timeout_s)


def read_timestamps(
    bootstrap: str, topic: str, n: int, timeout_s: float, start: dict[int, int] | None = None
) -> list[tuple[str, int]]:
    """(window_id, broker timestamp) of the first n records of `topic` (from the beginning,
    or from the offsets per partition in `start`, as `end_offsets` gave them)."""
    import orjson
    from kafka import KafkaConsumer

    from kafkaio.client import assign_from_beginning

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    deadline = time.monotonic() + timeout_s
    for tp in assign_from_beginning(consumer, topic, deadline):
        if start and tp.partition in start:
            consumer.seek(tp, start[tp.partition])
    out: list[tuple[str, int]] = []
    while len(out) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            out.extend((orjson.loads(r.value)["window_id"], r.timestamp) for r in records)
    consumer.close()
    return out


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`: where records produced from now on go."""
    from kafka import KafkaConsumer

    from kafkaio.client import assign_from_beginning

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    tps = assign_from_beginning(consumer, topic, time.monotonic() + 30)
    ends = {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    consumer.close()
    return ends


def drain_rate(stamps_ms: list[int], since_ms: float) -> tuple[float, int]:
    """Windows/s published after `since_ms` (steady state), and how many that rests on.

    A batch's outputs share one timestamp, published when its work is done: those at
    `since_ms` itself are left out (their work lies before it), the rest is counted over the
    time from `since_ms` to the last one.
    """
    steady = [ts for ts in stamps_ms if ts > since_ms]
    if not steady:
        return float("nan"), 0
    return len(steady) / max((max(steady) - since_ms) / 1000, 1e-9), len(steady)


def paced_send(
    bootstrap: str,
    topic: str,
    raw: list[bytes],
    rate: float,
    batch_bytes: int = 16384,
    linger_ms: int = 1,
) -> float:
    """Produce `raw` at `rate` windows/s (record batches up to `batch_bytes`, kafka-python's
    default unless given); returns the rate actually reached (one Python producer may fall
    short of a fast consumer group's 90%)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all", batch_size=batch_bytes
    )
    started = time.perf_counter()
    for i, r in enumerate(raw):
        ahead = i / rate - (time.perf_counter() - started)
        if ahead > 0:
            time.sleep(ahead)
        producer.send(topic, value=r, key=window_key(r))
    producer.flush()
    reached = len(raw) / max(time.perf_counter() - started, 1e-9)
    producer.close()
    return reached


def latency_ms(
    inputs: list[tuple[str, int]], outputs: list[tuple[str, int]], ids: set[str]
) -> tuple[float, float]:
    """p50 and p99 of output minus input broker timestamp over the windows in `ids`."""
    sent = {w: ts for w, ts in inputs if w in ids}
    lat = [ts - sent[w] for w, ts in outputs if w in sent]
    if not lat:
        return float("nan"), float("nan")
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def worker_rate(
    bootstrap: str,
    registry: Path,
    model: str,
    raw: list[bytes],
    log: Path,
    broker_pid: int,
    env_extra: dict[str, str | None] | None = None,
    drain_timeout_s: float = 600,
    read_during: bool = False,
) -> tuple[float, float, dict[str, float]]:
    """Steady-state windows/s through the worker on a pre-filled topic, its peak RSS (its
    scoring process's added), and the cores used meanwhile by the worker, its scoring
    process (`VAEWATCH_SCORER=process`: "scorer"), the broker and this process.

    The outputs' timestamps are read after the drain (`drain_and_read`), so no reader
    shares the two cores with the worker; `read_during` reads them while it drains instead
    (the method before 2026-11-26 20:50Z, kept for A/B).
    A slow setting stops after `drain_timeout_s` of draining: its rate is what it did by then.
    """
    with scratch_tag(bootstrap) as tag:
        fill_topic(bootstrap, f"in-{tag}", raw)
        with running_worker(bootstrap, registry, model, tag, log, env_extra) as proc:
            read_timestamps(bootstrap, f"co-{tag}", 1, timeout_s=120)  # joined, model warm
            done, rss, cores = _meter_drain(
                bootstrap, tag, len(raw), proc.pid, broker_pid, drain_timeout_s, read_during
            )
    return steady_rate(done), rss, cores


def auto_processes(registry: Path, model: str) -> int:
    """How many worker processes `VAEWATCH_PROCESSES=auto` starts on this machine for the
    published `model` (several only for a single-channel one)."""
    from worker.supervisor import model_channels, resolve_processes

    usable = apply_torch_threads().usable_cpus
    channels = model_channels(registry, model)
    return resolve_processes("auto", "auto", usable, channels, torch.cuda.is_available)


PROCESSES_AUTO: dict[str, str | None] = {"VAEWATCH_PROCESSES": "auto", "VAEWATCH_SCORER": None}


def joined_rate(
    bootstrap: str,
    registry: Path,
    model: str,
    raw: list[bytes],
    log: Path,
    broker_pid: int,
    env_extra: Mapping[str, str | None] | None = None,
    processes: int | None = None,
    partitions: int = 4,
    drain_timeout_s: float = 600,
) -> tuple[float, float, dict[str, float]]:
    """Windows/s, peak RSS (every process summed) and cores (its child processes summed as
    `processes`) of a worker started on the empty topic (`partitions`; 4, as the broker
    creates it for the pre-filled rows) and filled once its `processes` (None: as many as
    `auto` starts here) have partitions and the group has settled, as `workers_rate` does:
    no rebalance inside the measurement. By default `PROCESSES_AUTO` (`VAEWATCH_PROCESSES=
    auto`, `VAEWATCH_SCORER` unset); `env_extra` sets more."""
    from kafkaio.client import ensure_topics
    from kafkaio.settings import kafka_settings

    with scratch_tag(bootstrap) as tag:
        ensure_topics(kafka_settings(bootstrap), [f"in-{tag}"], partitions)
        env = {**PROCESSES_AUTO, "VAEWATCH_LOG_LEVEL": "INFO", **(env_extra or {})}
        with running_worker(bootstrap, registry, model, tag, log, env, stop_timeout_s=90) as proc:
            _wait_until_all_assigned([log], processes or auto_processes(registry, model))
            fill_topic(bootstrap, f"in-{tag}", raw)
            read_timestamps(bootstrap, f"co-{tag}", 1, timeout_s=120)
            done, rss, cores = _meter_drain(
                bootstrap, tag, len(raw), proc.pid, broker_pid, drain_timeout_s, False, "processes"
            )
    return steady_rate(done), rss, cores


def _meter_drain(
    bootstrap: str,
    tag: str,
    n: int,
    worker_pid: int,
    broker_pid: int,
    timeout_s: float,
    read_during: bool,
    children_key: str = "scorer",
) -> tuple[list[tuple[str, int]], float, dict[str, float]]:
    """A started worker's drain of `tag`'s n inputs: its outputs, its peak RSS (its child
    processes' added), and the cores each metered process used meanwhile."""
    pids = {"worker": worker_pid, "broker": broker_pid, "reader": os.getpid()}
    # the scoring process (or, under a supervisor, the worker processes and theirs) and
    # multiprocessing's idle resource tracker: summed as `children`
    pids |= {f"{children_key}{i}": c for i, c in enumerate(descendants(worker_pid))}
    done, used = drain_and_read(bootstrap, tag, n, CpuMeter(pids), timeout_s, read_during)
    cores: dict[str, float] = {}
    for name, share in used.items():
        key = children_key if name.startswith(children_key) else name
        cores[key] = cores.get(key, 0.0) + share
    rss = sum(
        memory_mb(pid, "VmHWM")
        for name, pid in pids.items()
        if name.startswith(("worker", children_key))
    )
    return done, rss, cores


def drain_and_read(
    bootstrap: str,
    tag: str,
    n: int,
    meter: CpuMeter,
    timeout_s: float,
    read_during: bool = False,
) -> tuple[list[tuple[str, int]], dict[str, float]]:
    """The (window_id, timestamp) of the n outputs of the group on `tag`'s topics (one
    corrected window per input) and the cores each metered process used while they drained.

    The meter runs until the group has committed all n inputs (the worker commits a batch
    only once its outputs are acknowledged), seen through OffsetFetch every 50 ms; the
    outputs are read afterwards: their timestamps were set when the worker produced them.
    `read_during` reads them while the worker drains (a reading consumer cost 0.08-0.25 of a
    core, plus the broker's serving of it: a share of the machine the CPU bound never had).
    """
    meter.start()
    if read_during:
        done = read_timestamps(bootstrap, f"co-{tag}", n, timeout_s=timeout_s)
        return done, meter_shares(meter)
    wait_committed(bootstrap, f"g-{tag}", n, timeout_s)
    used = meter_shares(meter)
    return read_timestamps(bootstrap, f"co-{tag}", n, timeout_s=60), used


def meter_shares(meter: CpuMeter) -> dict[str, float]:
    """Cores per metered process since `meter.start()`."""
    return {name: cpu / meter.wall_s for name, cpu in meter.stop().items()}


def wait_committed(bootstrap: str, group: str, n: int, timeout_s: float) -> bool:
    """True once `group`'s committed offsets sum to n (its topics are fresh: offsets from
    0), False after `timeout_s`. Reads no records."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            offsets = admin.list_group_offsets(group).get(group, {})
            if sum(o.offset for o in offsets.values() if o.offset > 0) >= n:
                return True
            time.sleep(0.05)
        return False
    finally:
        admin.close()


def steady_rate(done: list[tuple[str, int]]) -> float:
    """Windows/s of the outputs in steady state: the first 5% (group join, warm-up) skipped."""
    stamps = sorted(ts for _, ts in done)
    if len(stamps) < 2:
        return 0.0
    rate, _ = drain_rate(stamps, stamps[len(stamps) // 20])
    return rate


def workers_rate(
    bootstrap: str,
    registry: Path,
    model: str,
    raw: list[bytes],
    log: Path,
    broker_pid: int,
    processes: int,
    drain_timeout_s: float = 600,
    scorer: str = "thread",
) -> tuple[float, dict[str, float]]:
    """Steady-state windows/s of `processes` workers in one consumer group (scale-out on this
    machine), and the cores used meanwhile (all workers and their scoring processes summed).
    The input topic gets 4 partitions per process; the workers join before the topic is
    filled, so the run is not cut by a rebalance. `scorer` is each worker's
    VAEWATCH_SCORER (thread by default: scale-out by processes gives one GIL each already)."""
    from kafkaio.client import ensure_topics
    from kafkaio.settings import kafka_settings

    with scratch_tag(bootstrap) as tag:
        partitions = 4 * processes
        ensure_topics(kafka_settings(bootstrap), [f"in-{tag}"], partitions)
        env = {"VAEWATCH_LOG_LEVEL": "INFO", "VAEWATCH_TOPIC_PARTITIONS": str(partitions)}
        env["VAEWATCH_SCORER"] = scorer
        logs = [log.with_suffix(f".{i}.log") for i in range(processes)]
        procs = [start_worker(bootstrap, registry, model, tag, lg, env) for lg in logs]
        try:
            _wait_until_all_assigned(logs, processes)
            fill_topic(bootstrap, f"in-{tag}", raw)
            read_timestamps(bootstrap, f"co-{tag}", 1, timeout_s=120)
            meter = CpuMeter(  # scoring processes (and multiprocessing's tracker) run by now
                {"broker": broker_pid, "reader": os.getpid()}
                | {f"worker{i}": p.pid for i, p in enumerate(procs)}
                | {f"worker{i}-{c}": c for i, p in enumerate(procs) for c in children(p.pid)}
            )
            done, used = drain_and_read(bootstrap, tag, len(raw), meter, drain_timeout_s)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=60)
    cores = {k: v for k, v in used.items() if not k.startswith("worker")}
    cores["workers"] = sum(v for k, v in used.items() if k.startswith("worker"))
    return steady_rate(done), cores


def _processes_assigned(log_text: str) -> int:
    """How many of a log's worker processes (one, or a supervisor's) have had partitions."""
    lines = [x for x in log_text.splitlines() if '"partitions_assigned"' in x]
    return len({json.loads(x).get("process") for x in lines if x.startswith("{")})


def _wait_until_all_assigned(logs: list[Path], processes: int, timeout_s: float = 90) -> None:
    """`processes` worker processes, logging to `logs` (one each, or all to one under a
    supervisor), all have partitions, and the group has settled (no rebalance for 3 s)."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    seen = -1
    while time.monotonic() < deadline:
        texts = [lg.read_text(errors="replace") if lg.exists() else "" for lg in logs]
        events = sum(t.count('"partitions_assigned"') for t in texts)
        if events != seen:
            seen, quiet_since = events, time.monotonic()
        joined = sum(_processes_assigned(t) for t in texts) >= processes
        if joined and time.monotonic() - quiet_since > 3.0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{processes} workers did not all get partitions in {timeout_s:.0f} s")


def profile_worker(
    bootstrap: str,
    registry: Path,
    model: str,
    raw: list[bytes],
    rate: float,
    out: Path,
    env_extra: dict[str, str | None] | None = None,
) -> dict[str, dict[str, float]]:
    """py-spy on a worker busy with a backlog: per thread, wall-time shares per stage.

    A separate run (the sampler slows what it watches). The topic holds ~14 s of work at the
    measured rate; sampling starts at the first output (group joined, model warm) for 8 s.
    """
    with scratch_tag(bootstrap) as tag:
        backlog = [raw[i % len(raw)] for i in range(int(rate * 14))]
        fill_topic(bootstrap, f"in-{tag}", backlog)
        with running_worker(
            bootstrap, registry, model, tag, out.with_suffix(".log"), env_extra
        ) as proc:
            read_timestamps(bootstrap, f"co-{tag}", 1, timeout_s=120)
            sampler = profile.record(proc.pid, 8, out)
            if sampler is None:
                return {}
            sampler.wait(timeout=60)
    return profile.breakdown(out.read_text())


def latency_at(
    bootstrap: str,
    registry: Path,
    model: str,
    raw: list[bytes],
    rate: float,
    log: Path,
    env_extra: dict[str, str | None] | None = None,
    processes: int = 1,
) -> tuple[float, float]:
    """p50 and p99 latency (ms) of `raw` sent at `rate`; a worker of several `processes`
    is waited for until each has partitions and the group has settled."""
    with scratch_tag(bootstrap) as tag:
        if processes > 1:
            env_extra = {**(env_extra or {}), "VAEWATCH_LOG_LEVEL": "INFO"}
        with running_worker(bootstrap, registry, model, tag, log, env_extra):
            if processes > 1:
                _wait_until_all_assigned([log], processes)
            else:
                time.sleep(8)  # join the group before the clock starts
            paced_send(bootstrap, f"in-{tag}", raw, rate)
            inputs = read_timestamps(bootstrap, f"in-{tag}", len(raw), 60)
            outputs = read_timestamps(bootstrap, f"co-{tag}", len(raw), 120)
    return latency_ms(inputs, outputs, {w for w, _ in inputs})


def bound_parts(
    bootstrap: str, broker_pid: int, detector: Detector, raw: list[bytes], window: int
) -> dict[str, Any]:
    """The CPU bound's measured parts (codec, compute, relay) and the two ceilings, once, on
    messages of `window` steps."""
    channels = len(detector.channels)
    out: dict[str, Any] = {"codec_us_per_window": codec_us(raw[:1000], detector)}
    torch.set_num_threads(os.cpu_count() or 1)
    out["compute_ceiling"], out["best_batch"], compute_cpu = compute_ceiling(
        detector, window, channels
    )
    out["compute_cpu_ms_per_window_all_threads"] = compute_cpu * 1000
    # the CPU bound counts the least CPU a window's compute costs: on the worker's own
    # torch threads (auto, 1 on 2 CPUs) all-core torch spends more per window, and at the
    # least costly of 1,024 and MAX_BATCH windows a batch (a larger MAX_BATCH must not make
    # the bound easier: on 1 channel 4,096 cost ~40% more CPU a window than 1,024 alone)
    torch.set_num_threads(apply_torch_threads().threads)
    worker_cpu = min(
        compute_cpu_per_window(detector, window, channels, batch)
        for batch in sorted({1024, int(MAX_BATCH)})
    )
    out["compute_cpu_ms_per_window"] = min(compute_cpu, worker_cpu) * 1000
    with scratch_tag(bootstrap) as tag:
        fill_topic(bootstrap, f"relay-{tag}", raw)
        out["io_ceiling"], io_cpu = io_ceiling(bootstrap, f"relay-{tag}", len(raw), broker_pid)
    out["io_cpu_ms_per_window"] = io_cpu * 1000
    return out


def bound_and_process_worker(
    bootstrap: str,
    broker_pid: int,
    registry: Path,
    detector: Detector,
    raw: list[bytes],
    window: int,
    tmp: str,
) -> dict[str, Any]:
    """One repetition: the bound's parts, then the default worker (one process, scoring
    process), then `VAEWATCH_PROCESSES=auto` (`joined_rate`), on the model
    `bench-{window}x{channels}`."""
    name = f"bench-{window}x{len(detector.channels)}"
    out = bound_parts(bootstrap, broker_pid, detector, raw, window)
    (
        out["worker_process_scorer"],
        out["worker_process_scorer_peak_rss_mb"],
        out["cores_used_process_scorer"],
    ) = worker_rate(
        bootstrap,
        registry,
        name,
        raw,
        Path(tmp) / f"{name}-process.log",
        broker_pid,
        {"VAEWATCH_SCORER": "process"},
    )
    out["worker_auto"], out["worker_auto_peak_rss_mb"], out["cores_used_auto"] = joined_rate(
        bootstrap, registry, name, raw, Path(tmp) / f"{name}-auto.log", broker_pid
    )
    return out


# worker rows measured in each repetition: (rate key, its cores key)
REPEATED_WORKERS = (
    ("worker_process_scorer", "cores_used_process_scorer"),
    ("worker_auto", "cores_used_auto"),
)


def median_repeat(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each numeric part over the repetitions (their values under `repeats`);
    each worker row's cores from its median drain, its peak RSS the highest."""
    numeric = [k for k, v in repeats[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: float(np.median([r[k] for r in repeats])) for k in numeric}
    out["best_batch"] = repeats[0]["best_batch"]
    for rate_key, cores_key in REPEATED_WORKERS:
        if rate_key not in repeats[0]:
            continue
        ranked = sorted(repeats, key=lambda r: r[rate_key])
        middle = ranked[len(ranked) // 2]
        out[rate_key] = middle[rate_key]
        out[cores_key] = middle[cores_key]
        out[f"{rate_key}_peak_rss_mb"] = max(r[f"{rate_key}_peak_rss_mb"] for r in repeats)
    out["repeats"] = {k: [r[k] for r in repeats] for k in numeric}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=3000,
        help="windows per shape, at least (narrow shapes get 8 x MAX_BATCH: drain_windows)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measurements of the CPU bound's parts and of the default worker per shape, "
        "interleaved; the table shows medians (default 3)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="a second worker run per shape under py-spy: time shares per stage "
        "(results/profile-SHAPE.txt holds the raw stacks)",
    )
    parser.add_argument(
        "--threads-only",
        action="store_true",
        help="only the torch-threads comparison (1 vs 2 vs auto, quiet and busy; ~4 min)",
    )
    parser.add_argument(
        "--threads-windows", type=int, default=3000, help="windows per threads-comparison run"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.profile and profile.py_spy() is None and not args.threads_only:
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    from benchmarks.threads import compare_threads
    from worker.broker import EmbeddedBroker

    if args.threads_only:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
            assert broker.pid is not None
            compare_threads(broker.bootstrap, broker.pid, Path(tmp), args.threads_windows)
        return 0

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "device": "cuda" if torch.cuda.is_available() else "cpu (GPU not measured: no CUDA device)",
        "shapes": {},
    }
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        registry = Path(tmp) / "registry"
        broker_pid = broker.pid
        assert broker_pid is not None
        for window, channels in SHAPES:
            name = f"bench-{window}x{channels}"
            print(f"== {name}", flush=True)
            detector = build_detector(window, channels)
            publish_model(detector, registry, name)
            raw = messages(drain_windows(args.windows, window, channels), window, channels)
            row: dict[str, Any] = {"message_bytes": int(np.mean([len(r) for r in raw]))}
            row["windows"] = len(raw)
            row["worker"], row["worker_peak_rss_mb"], row["cores_used"] = worker_rate(
                broker.bootstrap,
                registry,
                name,
                raw,
                Path(tmp) / f"{name}.log",
                broker_pid,
                {"VAEWATCH_SCORER": "thread"},
            )
            # the bound's parts and the default worker, interleaved, `--repeat` times: this
            # shared machine moves one measurement by +-20% from minute to minute
            repeats = [
                bound_and_process_worker(
                    broker.bootstrap, broker_pid, registry, detector, raw, window, tmp
                )
                for _ in range(args.repeat)
            ]
            row.update(median_repeat(repeats))
            row["workers_2proc"], row["cores_used_2proc"] = workers_rate(
                broker.bootstrap,
                registry,
                name,
                raw,
                Path(tmp) / f"{name}-2proc.log",
                broker_pid,
                processes=2,
            )
            row["ratio_vs_min_ceiling"] = row["worker"] / min(
                row["io_ceiling"], row["compute_ceiling"]
            )
            row["sequential_bound"] = sequential_bound(row)
            row["ratio_vs_sequential_bound"] = row["worker"] / row["sequential_bound"]
            row["cpu_bound"] = cpu_bound(row, os.cpu_count() or 1)
            row["worker_vs_cpu_bound"] = row["worker"] / row["cpu_bound"]
            row["worker_process_scorer_vs_cpu_bound"] = (
                row["worker_process_scorer"] / row["cpu_bound"]
            )
            row["workers_2proc_vs_cpu_bound"] = row["workers_2proc"] / row["cpu_bound"]
            row["auto_processes"] = auto_processes(registry, name)
            row["worker_auto_vs_cpu_bound"] = row["worker_auto"] / row["cpu_bound"]
            for mode_key, cores_key in (
                ("worker", "cores_used"),
                ("worker_process_scorer", "cores_used_process_scorer"),
                ("workers_2proc", "cores_used_2proc"),
                ("worker_auto", "cores_used_auto"),
            ):
                row[f"{mode_key}_bound_gap"] = bound_gap(
                    row[mode_key], row[cores_key], row["cpu_bound"], os.cpu_count() or 1
                )
            # the best ratio to min(ceilings) any design could reach on this machine
            row["cpu_bound_vs_min_ceiling"] = row["cpu_bound"] / min(
                row["io_ceiling"], row["compute_ceiling"]
            )
            # the profile: one process (VAEWATCH_SCORER=auto), at half its max rate; latency:
            # the worker as shipped (VAEWATCH_PROCESSES=auto: several processes for a
            # 1-channel model, else that one process), at shares of its own max rate
            mode = choose_scorer("auto", "cpu", apply_torch_threads().usable_cpus, cuda=False)
            row["default_scorer"] = mode
            max_rate = row["worker_process_scorer" if mode == "process" else "worker"]
            latency_env: dict[str, str | None] = {"VAEWATCH_SCORER": mode}
            latency_max = max_rate
            if row["auto_processes"] > 1:
                latency_env, latency_max = dict(PROCESSES_AUTO), row["worker_auto"]
            if args.profile:
                RESULTS.mkdir(parents=True, exist_ok=True)
                row["profile_thread_shares"] = profile_worker(
                    broker.bootstrap,
                    registry,
                    name,
                    raw,
                    max_rate,
                    RESULTS / f"profile-{window}x{channels}.txt",
                    {"VAEWATCH_SCORER": mode},
                )
            if not args.no_latency:
                for pct in (50, 90):
                    p50, p99 = latency_at(
                        broker.bootstrap,
                        registry,
                        name,
                        raw[: min(len(raw), 1500)],
                        latency_max * pct / 100,
                        Path(tmp) / f"{name}-lat{pct}.log",
                        latency_env,
                        processes=row["auto_processes"],
                    )
                    row[f"latency_ms_at_{pct}pct"] = {"p50": p50, "p99": p99}
            results["shapes"][name] = row
            print(json.dumps(row, indent=1, default=lambda x: round(x, 1)), flush=True)
        compare_threads(broker.bootstrap, broker_pid, Path(tmp), args.threads_windows)
    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwritten {RESULTS / 'speed.json'} and {RESULTS / 'speed-threads.json'}")
    return 0


def sequential_bound(row: dict[str, Any]) -> float:
    """Windows/s if relay, codec and compute each took their measured time, one after another.

    On 2 cores each ceiling already uses the whole machine (the relay: kafka-python plus the
    broker; the compute: torch's threads), so a worker doing all three cannot overlap much:
    this bound, not min(ceilings), is what it can reach without more cores or a GPU.
    """
    per_window_s = (
        1 / row["io_ceiling"] + 1 / row["compute_ceiling"] + row["codec_us_per_window"] / 1e6
    )
    return float(1 / per_window_s)


def _cores(used: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in used.items())


def print_table(results: dict[str, Any]) -> None:
    print(f"\nvaewatch speed — {results['machine']}; device {results['device']}")
    head = (
        f"{'shape':<14}{'io ceil/s':>10}{'compute/s':>11}{'seq bound':>10}{'cpu bound':>10}"
        f"{'worker/s':>10}{'/min ceil':>10}{'/seq':>6}{'codec µs':>10}{'RSS MB':>8}"
        "  latency p50/p99 ms @50% | @90% (worker as shipped)"
    )
    print(head)
    for name, r in results["shapes"].items():
        lat = ""
        if "latency_ms_at_50pct" in r:
            a, b = r["latency_ms_at_50pct"], r["latency_ms_at_90pct"]
            lat = f"{a['p50']:.0f}/{a['p99']:.0f} | {b['p50']:.0f}/{b['p99']:.0f}"
            shipped = r.get("default_scorer", "thread")
            if r.get("auto_processes", 1) > 1:
                shipped = f"{r['auto_processes']} processes"
            lat += f" ({shipped})"
        print(
            f"{name:<14}{r['io_ceiling']:>10.0f}{r['compute_ceiling']:>11.0f}"
            f"{r['sequential_bound']:>10.0f}{r['cpu_bound']:>10.0f}{r['worker']:>10.0f}"
            f"{r['ratio_vs_min_ceiling']:>10.2f}{r['ratio_vs_sequential_bound']:>6.2f}"
            f"{r['codec_us_per_window']:>10.0f}{r['worker_peak_rss_mb']:>8.0f}  {lat}"
        )
    for name, r in results["shapes"].items():
        print(
            f"{name}: CPU ms per window: relay+broker {r['io_cpu_ms_per_window']:.3f}, "
            f"score+correct {r['compute_cpu_ms_per_window']:.3f}, codec "
            f"{r['codec_us_per_window'] / 1000:.3f}; best possible worker / min(ceilings) "
            f"on {os.cpu_count()} cores: {r['cpu_bound_vs_min_ceiling']:.2f}"
        )
    for name, r in results["shapes"].items():
        if "worker_auto" in r:
            print(
                f"{name}: VAEWATCH_PROCESSES=auto ({r['auto_processes']} processes) "
                f"{r['worker_auto']:.0f}/s = {r['worker_auto_vs_cpu_bound']:.2f} of the CPU "
                f"bound (cores: {_cores(r['cores_used_auto'])})"
            )
    for name, r in results["shapes"].items():
        if "workers_2proc" in r:
            print(
                f"{name}: worker / CPU bound {r['worker_vs_cpu_bound']:.2f} (1 process); "
                f"2 worker processes in one group {r['workers_2proc']:.0f}/s = "
                f"{r['workers_2proc_vs_cpu_bound']:.2f} of the CPU bound "
                f"(cores: {_cores(r['cores_used_2proc'])})"
            )
    for name, r in results["shapes"].items():
        if "worker_process_scorer" in r:
            used = _cores(r["cores_used_process_scorer"])
            print(
                f"{name}: VAEWATCH_SCORER thread {r['worker']:.0f}/s = "
                f"{r['worker_vs_cpu_bound']:.2f}, process {r['worker_process_scorer']:.0f}/s = "
                f"{r['worker_process_scorer_vs_cpu_bound']:.2f} of the CPU bound (cores: {used})"
            )
    for name, r in results["shapes"].items():
        if "cores_used" in r:
            used = _cores(r["cores_used"])
            print(f"{name}: cores used during the worker run: {used}")
    for name, r in results["shapes"].items():
        for mode_key in ("worker", "worker_process_scorer", "workers_2proc", "worker_auto"):
            gap = r.get(f"{mode_key}_bound_gap")
            if gap:
                print(
                    f"{name}: {mode_key} / CPU bound = CPU efficiency {gap['cpu_efficiency']:.2f}"
                    f" ({gap['bound_cpu_ms_per_window']:.3f} of {gap['cpu_ms_per_window']:.3f} "
                    f"CPU ms a window) x utilisation {gap['utilisation']:.2f} of the cores"
                )
    for name, r in results["shapes"].items():
        for thread, shares in r.get("profile_thread_shares", {}).items():
            print(f"\n{name}: worker {thread} thread, share of wall-time samples (py-spy)")
            for stage, share in shares.items():
                print(f"  {stage:<36}{share:>6.1%}")


if __name__ == "__main__":
    sys.exit(main())
