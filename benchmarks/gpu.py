"""`make bench-gpu` / `python -m benchmarks.gpu`: the worker's speed on a CUDA machine, one run.

Why apart from `make bench`: that one sets the CPU worker against its ceilings on a 2-core
machine. On a GPU box the questions differ. How fast does the network go in fp32 and in bf16
autocast, and how much of score + correct is the network at all (the rest is numpy on the
host: cutting sub-windows, overlap-adding them, the correction's bookkeeping)? What share do
host<->device copies take? Does the worker, one Python process per consumer, scale with
processes in one consumer group on many cores?

  compute  The worker's scoring work (`Detector.stateless`: point scores + correction, then
           `window_scores`) of the shipped architecture (64-step model window; a 128-step
           message is 2 tiles of 64 steps), fp32 and bf16 autocast, batches of 256 to 16,384
           windows, on two paths (--paths): `host`, numpy around the network, and `device`,
           every array on the device (`vaecore.resident`, the worker's path on CUDA).
           Windows/s and network sub-windows/s (score and correction passes), median of
           repeats with the device synchronised around each. Beside it the network alone (the
           score pass's sub-windows already on the device, same chunks) and where the time
           goes: host preparation, host->device copy, network, device->host copy and the rest
           (host path: aggregation and correction bookkeeping in numpy; device path: all but
           the network).
  worker   `python -m vaewatch worker` x1 and xN in one consumer group on the embedded Tansu
           broker (benchmarks.speed's helpers), N input partitions for both: the drain rate of
           a pre-filled backlog, counted from the moment every worker is ready (all of them
           hold partitions, so no rebalance is left), then, with the same warm workers,
           latency p50/p99 (produce -> corrected-window publish, broker timestamps) at 50%
           and 90% of that rate.

One markdown table on stdout, printed last; progress on stderr; the JSON (--out) is written
after every section, so a run cut short keeps what it measured. Synthetic sine + noise
windows and an untrained model, as in `make bench`: speed depends on shapes, not on training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.procstat import CpuMeter, memory_mb
from benchmarks.speed import (
    RESULTS,
    build_detector,
    codec_us,
    drain_rate,
    end_offsets,
    fill_topic,
    latency_ms,
    messages,
    paced_send,
    publish_model,
    read_timestamps,
    scratch_tag,
    start_worker,
    synthetic,
    window_id,
)
from kafkaio.client import PRODUCER_BATCH_BYTES
from vaecore import Detector
from vaecore.detector import sub_window_starts
from vaecore.device import autocast_for, select_device
from vwbase.errors import VaewatchError
from vwbase.logs import configure_logging

SHAPES = ((128, 1), (128, 8), (128, 38))
PRECISIONS = ("fp32", "bf16")
PATHS = ("host", "device")
MB = 1024 * 1024


@dataclass(frozen=True)
class Budget:
    """How long each measurement may take: the defaults fit ~7 min on a 16-core GPU box."""

    batches: tuple[int, ...] = (256, 1024, 4096, 16384)
    timing_s: float = 1.0  # repeats of one compute measurement (at least 3)
    drain_s: float = 5.0  # aimed-at seconds of steady drain per worker run
    latency_s: float = 4.0  # seconds of paced sending per latency run
    max_bytes: int = 400 * MB  # of one backlog or one latency run's messages
    max_windows: int = 100_000  # in one backlog or one latency run
    min_batches: int = 8  # micro-batches per worker in a backlog at least (outputs come in batches)
    min_latency_windows: int = 500  # per latency run, however low the rate


QUICK = Budget(
    (256, 1024),
    timing_s=0.3,
    drain_s=1.0,
    latency_s=1.0,
    max_bytes=8 * MB,
    min_batches=4,
    min_latency_windows=100,
)
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench-gpu +{time.monotonic() - STARTED:.0f}s] {message}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work: CUDA kernels return before they finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_s(fn: Callable[[], object], device: torch.device, budget_s: float) -> float:
    """Median wall seconds of fn(), after a warm-up call (lazy CUDA init, kernel choice),
    with the device synchronised around every call: at least 3 repeats, then until
    `budget_s` is spent (at most 50)."""
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < budget_s and len(times) < 50):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- compute: score + correct, the network alone, where the time goes ------------------------


@dataclass
class StagedDetector(Detector):
    """A Detector whose forward stages are timed apart, the device synchronised after each.

    The synchronisation changes little: the shipped path already waits for each chunk's
    results (the copy back blocks), so its stages run one after another anyway.
    """

    stage_s: dict[str, float] = field(default_factory=dict)
    subwindows: int = 0  # through the network since reset(): score and correction passes

    @classmethod
    def of(cls, detector: Detector) -> StagedDetector:
        return cls(**{f.name: getattr(detector, f.name) for f in fields(Detector)})

    def reset(self) -> None:
        self.stage_s, self.subwindows = {}, 0

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        sync(self.device)
        self.stage_s[name] = self.stage_s.get(name, 0.0) + time.perf_counter() - started

    def _prepare(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._stage("host_prepare"):
            return super()._prepare(chunk)

    def _upload(self, arrays: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        with self._stage("h2d"):
            return super()._upload(arrays)

    def _sampled_nll(
        self, x_in: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.subwindows += len(x)
        with self._stage("network"):
            return super()._sampled_nll(x_in, x)

    def _download(
        self, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._stage("d2h"):
            return super()._download(outputs)


def score_and_correct(detector: Detector, windows: list[np.ndarray], path: str = "host") -> None:
    """What the worker's scoring does with a batch, on `path` (host | device)."""
    points, _ = detector.stateless(windows, on_device=path == "device")
    detector.window_scores(points)


def score_pass(detector: Detector, windows: list[np.ndarray]) -> np.ndarray:
    """The score pass's normalised sub-windows (N, W, C), as both paths cut them."""
    stack = detector.scaler.transform(np.stack(windows))
    starts = np.asarray(sub_window_starts(stack.shape[1], detector.window, detector.stride or 1))
    cut = stack[:, starts[:, None] + np.arange(detector.window)]
    return cut.reshape(-1, detector.window, stack.shape[2])


def stage_shares(
    detector: Detector, windows: list[np.ndarray], path: str
) -> tuple[dict[str, float], float]:
    """Shares of one call per stage (two timed calls after a warm-up) and the sub-windows
    one call sends through the network. The device path has no host stages: its rest is
    everything but the network."""
    staged = StagedDetector.of(detector)
    score_and_correct(staged, windows, path)
    staged.reset()
    total = 0.0
    for _ in range(2):
        sync(staged.device)
        started = time.perf_counter()
        score_and_correct(staged, windows, path)
        sync(staged.device)
        total += time.perf_counter() - started
    shares = {stage: s / total for stage, s in staged.stage_s.items()}
    shares["host_other"] = max(0.0, 1.0 - sum(shares.values()))
    return shares, staged.subwindows / 2


def network_alone_s(detector: Detector, subwindows: np.ndarray, budget_s: float) -> float:
    """Seconds of the network over `subwindows`, in the detector's chunks, inputs already on
    the device and outputs left there: what the model costs without the host around it."""
    step = detector.max_batch
    with torch.inference_mode(), autocast_for(detector.device, detector.precision):
        chunks = [
            detector._upload(detector._prepare(subwindows[i : i + step]))
            for i in range(0, len(subwindows), step)
        ]

        def run() -> None:
            for x_in, x in chunks:
                detector._sampled_nll(x_in, x)

        return median_s(run, detector.device, budget_s)


def compute_row(
    detector: Detector,
    windows: list[np.ndarray],
    path: str,
    network: tuple[float, int],
    budget_s: float,
) -> Any:
    """One row; `network`: seconds of the network alone over the score pass, and how many
    sub-windows that pass has."""
    net_s, score_subwindows = network
    batch, (window, channels) = len(windows), windows[0].shape
    seconds = median_s(
        lambda: score_and_correct(detector, windows, path), detector.device, budget_s
    )
    shares, subwindows = stage_shares(detector, windows, path)
    return {
        "shape": f"{window}x{channels}",
        "path": path,
        "precision": detector.precision,
        "batch": batch,
        "windows_per_s": batch / seconds,
        "subwindows_per_window": subwindows / batch,
        "subwindows_per_s": subwindows / seconds,
        "network_alone_windows_per_s": batch / net_s,
        "network_alone_subwindows_per_s": score_subwindows / net_s,
        "shares": shares,
    }


def path_agreement(detector: Detector, windows: list[np.ndarray]) -> dict[str, float]:
    """How far the device path's results are from the host path's on this device: largest
    relative differences of step scores and corrected values, and points flagged or
    replaced by one path only (a score within rounding of its threshold can flip)."""
    host_points, host_fixes = detector.stateless(windows, on_device=False)
    points, fixes = detector.stateless(windows, on_device=True)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        both = np.isfinite(a) & np.isfinite(b)
        return float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1e-6)))

    return {
        "windows": len(windows),
        "raw_step_max_rel": max(
            rel(a.raw_step, b.raw_step) for a, b in zip(host_points, points, strict=True)
        ),
        "values_max_rel": max(
            rel(a.values, b.values) for a, b in zip(host_fixes, fixes, strict=True)
        ),
        "flagged_differ": int(
            sum((a.flagged != b.flagged).sum() for a, b in zip(host_points, points, strict=True))
        ),
        "flagged": int(sum(a.flagged.sum() for a in host_points)),
        "replaced_differ": int(
            sum((a.replaced != b.replaced).sum() for a, b in zip(host_fixes, fixes, strict=True))
        ),
    }


def compute_rows(
    base: Detector, shape: tuple[int, int], budget: Budget, paths: tuple[str, ...] = PATHS
) -> list[Any]:
    """Per precision and batch, each path on the same windows, one after the other: the
    paths' ratio comes from one run on one machine."""
    rows = []
    for precision in PRECISIONS:
        detector = replace(base, precision=precision)
        for batch in budget.batches:
            windows = list(synthetic(batch, shape[0], shape[1], seed=3))
            subs = score_pass(detector, windows)
            network = network_alone_s(detector, subs, budget.timing_s), len(subs)
            for path in paths:
                row = compute_row(detector, windows, path, network, budget.timing_s)
                log(
                    f"compute {row['shape']} {path} {precision} batch {batch}: "
                    f"{row['windows_per_s']:,.0f} windows/s, network alone "
                    f"{row['network_alone_windows_per_s']:,.0f}"
                )
                rows.append(row)
    return rows


# --- worker: 1 and N processes in one consumer group --------------------------------------


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafkaio.client import ensure_topics
    from worker.settings import WorkerSettings

    ensure_topics(WorkerSettings(kafka_bootstrap_servers=bootstrap), [topic], partitions)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(group: list[tuple[subprocess.Popen[bytes], int]], timeout_s: float) -> float:
    """Epoch ms when every worker answers /readyz (model loaded, partitions assigned). With as
    many partitions as workers that needs every member in the group: the last rebalance is over."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc, _ in group:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
        if all(ready(port) for _, port in group):
            return time.time() * 1000
        time.sleep(0.1)
    raise RuntimeError(f"workers not all ready within {timeout_s:.0f} s")


@contextmanager
def worker_group(
    bootstrap: str,
    registry: Path,
    model: str,
    tag: str,
    count: int,
    env: dict[str, str],
    logs: Path,
) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    """`count` workers on the topics of `tag` (one consumer group), each with its own
    metrics port for /readyz; stopped with SIGTERM on exit."""
    from worker.broker import free_port

    group = []
    try:
        for i in range(count):
            port = free_port()
            extra = {**env, "VAEWATCH_METRICS_PORT": str(port)}
            log_file = logs / f"worker-{tag}-{i}.log"
            group.append((start_worker(bootstrap, registry, model, tag, log_file, extra), port))
        yield group
    finally:
        for proc, _ in group:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in group:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def fitting(n: int, message_bytes: int, budget: Budget, least: int = 200) -> int:
    """n windows, at most budget.max_windows and what budget.max_bytes holds, but at least
    `least` (a backlog must span many micro-batches for a rate to mean anything)."""
    most = min(budget.max_windows, budget.max_bytes // max(message_bytes, 1))
    return int(max(least, min(n, most)))


# the workers' own histograms (worker.observability): their sums and counts, over the group
WORKER_SUMS = {
    "batches": "vaewatch_batch_size_count",
    "windows": "vaewatch_batch_size_sum",
    "batch_s": "vaewatch_batch_duration_seconds_sum",
    "scoring_s": "vaewatch_scoring_duration_seconds_sum",
    "end_to_end_s": "vaewatch_end_to_end_latency_seconds_sum",
    "end_to_end_n": "vaewatch_end_to_end_latency_seconds_count",
}


def worker_sums(ports: list[int]) -> dict[str, float]:
    """WORKER_SUMS added over the group's /metrics (a worker that does not answer counts 0)."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {name: key for key, name in WORKER_SUMS.items()}
    totals = dict.fromkeys(WORKER_SUMS, 0.0)
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                text = reply.read().decode()
        except (urllib.error.URLError, OSError):
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    totals[wanted[sample.name]] += sample.value
    return totals


def where_latency_goes(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-batch means over one run, from the workers' histograms: what a window waits for.

    end_to_end = produce -> this worker's outputs acknowledged (the worker's own clock);
    batch = its batch from collected to committed; scoring = score + correct (a part of
    batch); the rest of end_to_end is waiting to be fetched and collected, or behind
    earlier batches."""
    d = {key: after[key] - before[key] for key in WORKER_SUMS}
    batches = max(d["batches"], 1.0)
    return {
        "batches": d["batches"],
        "mean_batch": d["windows"] / batches,
        "batch_ms": 1000 * d["batch_s"] / batches,
        "scoring_ms": 1000 * d["scoring_s"] / batches,
        "end_to_end_ms": 1000 * d["end_to_end_s"] / max(d["end_to_end_n"], 1.0),
    }


def latency_run(
    bootstrap: str,
    tag: str,
    run: WorkerRun,
    rate: float,
    pct: int,
    budget: Budget,
    group: list[tuple[subprocess.Popen[bytes], int]] | None = None,
) -> dict[str, Any]:
    """Paced production at pct% of `rate` into the running group; p50/p99 of this run only.
    With the `group`: where the time went (`where_latency_goes`) and the cores the broker,
    each worker process (its scoring process not counted) and this sender used meanwhile."""
    window, channels = run.shape
    prefix = f"lat{pct}-"
    probe = messages(1, window, channels, prefix)[0]
    wanted = int(rate * pct / 100 * budget.latency_s)
    n = fitting(wanted, len(probe), budget, budget.min_latency_windows)
    raw = messages(n, window, channels, prefix)
    starts = end_offsets(bootstrap, f"in-{tag}"), end_offsets(bootstrap, f"co-{tag}")
    ports = [port for _, port in group or []]
    pids = {f"worker-{i}": proc.pid for i, (proc, _) in enumerate(group or [])}
    meter = CpuMeter({**pids, "sender": os.getpid(), **run.broker_pids})
    before = worker_sums(ports)
    meter.start()
    # ~1 MB record batches: the 2026-11-26 09:30Z H200 run's producer reached only ~650/s
    # of 20 KB messages, each alone in a request (over the default 16 KiB batch)
    offered = paced_send(
        bootstrap, f"in-{tag}", raw, rate * pct / 100, PRODUCER_BATCH_BYTES, run.sender_linger_ms
    )
    cpu = meter.stop()
    inputs = read_timestamps(bootstrap, f"in-{tag}", n, 60, starts[0])
    outputs = read_timestamps(bootstrap, f"co-{tag}", n, 60 + n / max(rate, 1), starts[1])
    p50, p99 = latency_ms(inputs, outputs, {window_id(i, prefix) for i in range(n)})
    target = rate * pct / 100
    row: dict[str, Any] = {
        "p50": p50,
        "p99": p99,
        "target_per_s": target,
        "offered_per_s": offered,
        "windows": n,
    }
    if group:
        row["workers"] = where_latency_goes(before, worker_sums(ports))
        row["cores"] = {name: round(s / meter.wall_s, 2) for name, s in cpu.items()}
    return row


@dataclass
class WorkerRun:
    """One worker-group measurement's inputs (what differs between the x1 and xN runs)."""

    shape: tuple[int, int]
    count: int
    partitions: int
    guess_per_s: float  # expected drain rate: sizes the backlog to ~budget.drain_s of work
    env: dict[str, str]
    broker_pids: dict[str, int] = field(default_factory=dict)  # {"broker": pid}: its cores
    sender_linger_ms: int = 1  # the paced sender's producer linger

    @property
    def max_batch(self) -> int:
        """The workers' micro-batch size (VAEWATCH_MAX_BATCH, else the settings' default)."""
        from worker.settings import WorkerSettings

        default = WorkerSettings.model_fields["max_batch"].default
        return int(self.env.get("VAEWATCH_MAX_BATCH", default))


def worker_row(bootstrap: str, registry: Path, run: WorkerRun, budget: Budget, logs: Path) -> Any:
    """One worker row on topics of its own, deleted afterwards (`scratch_tag`)."""
    with scratch_tag(bootstrap) as tag:
        return tagged_worker_row(bootstrap, registry, run, budget, logs, tag)


def tagged_worker_row(
    bootstrap: str, registry: Path, run: WorkerRun, budget: Budget, logs: Path, tag: str
) -> Any:
    window, channels = run.shape
    model = f"gpu-{window}x{channels}"
    probe = messages(1, window, channels)[0]
    # the first workers to join drain alone while the others start: ~3 s more backlog
    wanted = int(run.guess_per_s * (budget.drain_s + (3 if run.count > 1 else 0)))
    least = budget.min_batches * run.count * run.max_batch
    backlog = messages(fitting(wanted, len(probe), budget, least), window, channels)
    create_topic(bootstrap, f"in-{tag}", run.partitions)
    filled = time.perf_counter()
    fill_topic(bootstrap, f"in-{tag}", backlog)
    row: dict[str, Any] = {
        "shape": f"{window}x{channels}",
        "workers": run.count,
        "partitions": run.partitions,
        "backlog": len(backlog),
        "message_bytes": len(probe),
        "fill_s": time.perf_counter() - filled,
    }
    started = time.time() * 1000
    with worker_group(bootstrap, registry, model, tag, run.count, run.env, logs) as group:
        stable_ms = wait_ready(group, timeout_s=180)
        wait_s = 120 + 3 * len(backlog) / max(run.guess_per_s, 1)
        stamps = [ts for _, ts in read_timestamps(bootstrap, f"co-{tag}", len(backlog), wait_s)]
        # from all-ready, or from the first batch's publish when that comes later (warm-up)
        rate, steady = drain_rate(stamps, max(stable_ms, min(stamps, default=stable_ms)))
        row.update(ready_s=(stable_ms - started) / 1000, windows_per_s=rate, steady_outputs=steady)
        log(f"worker {row['shape']} x{run.count}: {rate:,.0f} windows/s ({steady} outputs)")
        if len(stamps) < len(backlog) or not math.isfinite(rate):
            # a backlog still draining would queue the paced windows behind it
            row["error"] = f"only {len(stamps)} of {len(backlog)} outputs in {wait_s:.0f} s"
            return row
        for pct in (50, 90):
            row[f"latency_ms_at_{pct}pct"] = latency_run(
                bootstrap, tag, run, rate, pct, budget, group
            )
            log(f"  latency @{pct}%: {row[f'latency_ms_at_{pct}pct']}")
        row["peak_rss_mb"] = max(memory_mb(proc.pid, "VmHWM") for proc, _ in group)
    return row


def worker_rows(
    bootstrap: str,
    registry: Path,
    logs: Path,
    shape: tuple[int, int],
    first_guess: float,
    args: Any,
    broker_pid: int | None = None,
) -> list[Any]:
    """One row per --worker-counts entry (default 1 and N); each guesses its drain rate from
    the last one measured, scaled by the count (the backlog's size, not a result)."""
    rows, guess, last = [], first_guess, 1
    for count in args.worker_counts:
        if time.monotonic() > args.deadline:
            log(f"worker {shape} x{count} skipped: --max-minutes reached")
            rows.append({"shape": f"{shape[0]}x{shape[1]}", "workers": count, "error": "skipped"})
            continue
        run = WorkerRun(
            shape,
            count,
            args.workers,
            guess * count / last,
            worker_env(args),
            {"broker": broker_pid} if broker_pid else {},
            args.sender_linger_ms,
        )
        try:
            row = worker_row(bootstrap, registry, run, args.budget, logs)
        except Exception as exc:  # one failed run must not lose the others
            log(f"worker {shape} x{count} failed: {exc!r}")
            row = {"shape": f"{shape[0]}x{shape[1]}", "workers": count, "error": repr(exc)}
        rows.append(row)
        if math.isfinite(row.get("windows_per_s", math.nan)):
            guess, last = row["windows_per_s"], count
    return rows


def worker_env(args: Any) -> dict[str, str]:
    env = {"VAEWATCH_DEVICE": args.device, "VAEWATCH_TOPIC_PARTITIONS": str(args.workers)}
    for item in args.worker_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def first_guess(detector: Detector, shape: tuple[int, int], compute: list[Any]) -> float:
    """Drain rate one worker may reach, to size its backlog: below its compute ceiling and
    below a quarter of what the codec alone allows (decode, validate, encode, on the main
    thread beside polling and sending; `make bench` on 2 cores: 1/5 to 1/9). Measured here,
    so it follows the machine's speed and load; a wrong guess costs time, not accuracy."""
    raw = messages(200, shape[0], shape[1])
    codec_s = codec_us(raw, detector) / 1e6
    ceiling = max(r["windows_per_s"] for r in compute if r["shape"] == f"{shape[0]}x{shape[1]}")
    return float(min(ceiling, 1 / (4 * codec_s)))


# --- output ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        # "fp32" convolutions run as TF32 on Ampere and later while cuDNN allows it
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


def write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=_plain) + "\n")


def _plain(value: object) -> object:
    """numpy scalars as numbers, paths as strings."""
    return float(value) if isinstance(value, (np.floating, np.integer)) else str(value)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def share(shares: dict[str, float], stage: str) -> str:
    """A stage's share, or "-" for a stage the path does not time apart (the device path's
    copies and preparation are part of its rest)."""
    return pct(shares[stage]) if stage in shares else "-"


def latency_cell(lat: dict[str, Any] | None) -> str:
    if not lat:
        return ""
    cell = f"{lat['p50']:,.0f} / {lat['p99']:,.0f} ms ({lat['offered_per_s']:,.0f}/s"
    went = lat.get("workers")
    if isinstance(went, dict) and went.get("batches"):
        cell += f"; batches of {went['mean_batch']:,.0f} in {went['batch_ms']:,.0f} ms"
    return cell + ")"


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"vaewatch bench-gpu — device {results['device']}"
        + (f" ({results['torch_threads']} torch threads)" if results["device"] == "cpu" else "")
        + (f" ({m['gpu']}, CUDA {m['cuda']})" if "gpu" in m else "")
        + f", {m['cpu_cores']} cores, torch {m['torch']}, Python {m['python']}",
        "",
        "| shape | run | precision | batch | windows/s | sub-windows/s | network alone "
        "windows/s | network | H2D | D2H | host prep | host rest | latency p50/p99 @50% "
        "(sent/s) | @90% |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in results["compute"]:
        s = r["shares"]
        lines.append(
            f"| {r['shape']} | score+correct ({r.get('path', 'host')}) | {r['precision']} "
            f"| {r['batch']:,} "
            f"| {r['windows_per_s']:,.0f} | {r['subwindows_per_s']:,.0f} "
            f"| {r['network_alone_windows_per_s']:,.0f} | {pct(s.get('network', 0))} "
            f"| {share(s, 'h2d')} | {share(s, 'd2h')} "
            f"| {share(s, 'host_prepare')} | {pct(s['host_other'])} | | |"
        )
    for r in results.get("worker", []):
        rate = f"{r['windows_per_s']:,.0f}" if "windows_per_s" in r else "failed"
        rate = "skipped (time)" if r.get("error") == "skipped" else rate
        if "windows_per_s" in r and r["steady_outputs"] < 0.2 * r["backlog"]:
            rate += " (short)"
        lines.append(
            f"| {r['shape']} | worker x{r['workers']} | auto | | {rate} | | | | | | | "
            f"| {latency_cell(r.get('latency_ms_at_50pct'))} "
            f"| {latency_cell(r.get('latency_ms_at_90pct'))} |"
        )
    tf32 = m.get("cudnn_allow_tf32")
    lines += [
        "",
        *([f"fp32 on CUDA: cuDNN TF32 convolutions allowed = {tf32}."] if tf32 is not None else []),
        "network/H2D/D2H/host: shares of one score + correct (device synchronised per stage);",
        "rest = host path: aggregation and correction bookkeeping in numpy; device path",
        "(vaecore.resident, the worker's on CUDA): all but the network. Sub-windows/s",
        "count score and correction passes; network alone = score pass on device-resident input.",
        "worker: drain rate from all-ready (auto precision, worker defaults), latency = produce",
        "-> corrected-window publish at 50%/90% of it, (sent/s) as one producer reached it,",
        "and the workers' mean micro-batch then (windows, collected -> committed);",
        "(short) = under 20% of the backlog left after all were ready; failed: see the JSON.",
    ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, int]:
    """'128x38' -> (128, 38): message length x channels."""
    steps, channels = text.lower().split("x")
    return int(steps), int(channels)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="batches 256 and 1024, short runs")
    parser.add_argument("--skip-worker", action="store_true", help="compute section only")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu.json", help="JSON path")
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--workers", type=int, default=4 if cores >= 8 else 2, help="N of the xN run"
    )
    parser.add_argument(
        "--worker-counts",
        help="worker processes of each worker run, e.g. 4 or 1,2,4 (default 1 and --workers; "
        "the input topic has --workers partitions)",
    )
    parser.add_argument(
        "--sender-linger-ms",
        type=int,
        default=1,
        help="linger of the latency runs' paced producer (default 1)",
    )
    parser.add_argument("--shapes", default="128x1,128x8,128x38", help="e.g. 128x1,128x38")
    parser.add_argument("--batches", help="comma-separated batch sizes (override)")
    parser.add_argument("--timing-s", type=float, help="seconds per compute measurement")
    parser.add_argument(
        "--net-chunk", type=int, help="sub-windows per network pass (Detector.max_batch)"
    )
    parser.add_argument("--threads", type=int, help="torch threads on CPU (see cpu_threads)")
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help="scoring paths of the compute rows: host (numpy around the network), device "
        "(every array on the device, the worker's on CUDA); default both",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=8.0,
        help="start no worker run after this many minutes (the table still comes; default 8)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra worker environment, e.g. VAEWATCH_MAX_BATCH=1024 (repeatable)",
    )
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else Budget()
    if args.batches:
        budget = replace(budget, batches=tuple(int(b) for b in args.batches.split(",")))
    if args.timing_s:
        budget = replace(budget, timing_s=args.timing_s)
    args.budget = budget
    args.shape_list = [parse_shape(s) for s in args.shapes.split(",")]
    args.paths = tuple(args.paths.split(","))
    counts = args.worker_counts or f"1,{args.workers}"
    args.worker_counts = tuple(int(c) for c in counts.split(","))
    if not all(0 < c <= args.workers for c in args.worker_counts):
        parser.error("--worker-counts: each between 1 and --workers (the input partitions)")
    if not set(args.paths) <= set(PATHS):
        parser.error(f"--paths: choose from {', '.join(PATHS)}")
    return args


def cpu_threads(args: argparse.Namespace) -> int:
    """torch threads for scoring on CPU: --threads, else OMP_NUM_THREADS, else every core as
    `make bench` (1 with --quick: a smoke run on a busy shared 2-core machine, where two
    spinning torch threads made score + correct 10-25x slower than one)."""
    if args.threads:
        return int(args.threads)
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    return 1 if args.quick else os.cpu_count() or 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = select_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(args))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "args": {k: v for k, v in vars(args).items() if k not in ("budget", "deadline")},
        "budget": asdict(args.budget),
        "compute": [],
    }
    detectors: dict[tuple[int, int], Detector] = {}
    for shape in args.shape_list:
        log(f"compute {shape[0]}x{shape[1]} on {device}")
        detector = build_detector(shape[0], shape[1], device=args.device)
        if args.net_chunk:
            detector = replace(detector, max_batch=args.net_chunk)
        detectors[shape] = detector
        windows = list(synthetic(256, shape[0], shape[1], seed=4))
        agreement = {"shape": f"{shape[0]}x{shape[1]}", **path_agreement(detector, windows)}
        log(f"device path against host path: {agreement}")
        results.setdefault("path_agreement", []).append(agreement)
        results["compute"] += compute_rows(detector, shape, args.budget, args.paths)
        write(results, args.out)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the workers want the memory
    if not args.skip_worker:
        results["worker"] = []
        run_workers(args, detectors, results)
    return results


def run_workers(args: argparse.Namespace, detectors: dict[Any, Detector], results: Any) -> None:
    from worker.broker import EmbeddedBroker

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        registry = Path(tmp) / "registry"
        for shape, detector in detectors.items():
            publish_model(detector, registry, f"gpu-{shape[0]}x{shape[1]}")
            guess = first_guess(detector, shape, results["compute"])
            results["worker"] += worker_rows(
                broker.bootstrap, registry, Path(tmp), shape, guess, args, broker.pid
            )
            write(results, args.out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.deadline = time.monotonic() + 60 * args.max_minutes
    configure_logging("WARNING", "console")  # the Kafka helpers log; keep stdout for the table
    started = time.monotonic()
    try:
        results = run(args)
    except VaewatchError as exc:
        print(f"bench-gpu: {exc}", file=sys.stderr)
        return 2
    results["wall_s"] = time.monotonic() - started
    write(results, args.out)
    log(f"written {args.out} after {results['wall_s']:.0f} s")
    print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
