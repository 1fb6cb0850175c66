"""Sub-commands of the streaming side: `worker`, `replay`, `tail`, `broker`."""

from __future__ import annotations

import argparse
import functools
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from kafkaio.settings import env_var
from vwbase import argtypes
from vwbase.logs import configure_logging
from worker.settings import WorkerSettings, settings_from_cli

log = structlog.get_logger(__name__)

WORKER_FLAGS = {
    "bootstrap_servers": "kafka_bootstrap_servers",
    "input_topic": "input_topic",
    "group_id": "group_id",
    "registry": "registry",
    "model": "model",
    "device": "device",
    "max_batch": "max_batch",
    "max_batch_wait_ms": "max_batch_wait_ms",
    "metrics_port": "metrics_port",
    "processes": "processes",
}


def _env_help() -> str:
    lines = ["environment (flags override):"]
    for name, field in WorkerSettings.model_fields.items():
        default = field.default
        shown = "" if default is None else f" (default {default})"
        lines.append(f"  {env_var(name):36s}{(field.description or '')}{shown}")
    # read by the `vaewatch` command itself, for every sub-command (`vaewatch --log-level`)
    level = "DEBUG|INFO|WARNING|ERROR; DEBUG adds a line per batch (default INFO)"
    lines.append(f"  {env_var('log_level'):36s}{level}")
    return "\n".join(lines)


def _worker(args: argparse.Namespace) -> int:
    from worker.preflight import check_worker_can_start

    overrides = {field: getattr(args, flag) for flag, field in WORKER_FLAGS.items()}
    given = {
        f: "--" + flag.replace("_", "-")
        for flag, f in WORKER_FLAGS.items()
        if overrides[f] is not None
    }
    settings = settings_from_cli(overrides, flags=given)
    check_worker_can_start(settings)  # settings that can never work: one line, exit 2
    count, cpus = _processes(settings)
    if count == 1:
        from worker.app import run_worker

        return run_worker(settings)
    from worker.supervisor import Supervisor

    setup = functools.partial(configure_logging, args.log_level, args.log_format)
    return Supervisor(settings, count, cpus, setup).run()


def _processes(settings: WorkerSettings) -> tuple[int, int]:
    """How many worker processes (`VAEWATCH_PROCESSES`), and the CPUs each counts as its own."""
    from vwbase.threads import affinity_cpus, cgroup_cpu_quota, usable_cpus
    from worker.supervisor import cpus_per_process, model_channels, resolve_processes

    cpus = usable_cpus(affinity_cpus(), cgroup_cpu_quota())
    auto = settings.processes == "auto"
    channels = model_channels(settings.registry, settings.model) if auto else None
    # `_cuda_available` is asked only when it decides: it starts an interpreter that imports torch
    count = resolve_processes(settings.processes, settings.device, cpus, channels, _cuda_available)
    log.info(
        "worker_processes_chosen",
        processes=count,
        setting=settings.processes,
        model_channels=channels,
        usable_cpus=cpus,
        why=_why_processes(auto, channels, count),
    )
    return count, cpus_per_process(cpus, count)


def _why_processes(auto: bool, channels: int | None, count: int) -> str:
    """The reason for the count, in the operator's words (`worker_processes_chosen`)."""
    from worker.supervisor import narrow_model

    if not auto:
        return "set by VAEWATCH_PROCESSES"
    if channels is None:
        return (
            "no model readable under that name yet: one process; auto chooses again at the "
            "next start (one per usable CPU for a 1-channel model)"
        )
    if not narrow_model(channels):
        return f"a {channels}-channel model: one process with a scoring process is faster"
    if count == 1:
        return "a 1-channel model, but one usable CPU or a CUDA device: one process"
    return "a 1-channel model: one process per usable CPU"


def _cuda_available() -> bool:
    """torch.cuda.is_available(), asked in a short-lived interpreter: imported here, torch
    would stay in the supervisor's memory for nothing (~240 MB, as much as a worker)."""
    ask = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        return subprocess.run([sys.executable, "-c", ask], timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _replay(args: argparse.Namespace) -> int:
    from worker.replay import load_replay_tables, replay_series

    settings = settings_from_cli({"kafka_bootstrap_servers": args.bootstrap_servers})
    tables = load_replay_tables([Path(p) for p in args.data], args.split)
    started = time.perf_counter()
    sent = replay_series(
        settings,
        tables,
        args.topic,
        window=args.window,
        stride=args.stride,
        rate=args.rate,
        limit=args.limit,
        progress=sys.stderr.isatty(),
    )
    seconds = time.perf_counter() - started
    print(
        f"replayed {sent} windows from {len(tables)} series to {args.topic} in {seconds:.1f}s "
        f"({sent / max(seconds, 1e-9):.0f} windows/s)"
    )
    return 0


def _tail(args: argparse.Namespace) -> int:
    from kafkaio.settings import kafka_settings
    from worker.kafka_edge import follow_topic
    from worker.tail import format_line

    settings = kafka_settings(args.bootstrap_servers)
    shown = 0
    try:
        for partition, offset, value in follow_topic(
            settings, args.topic, args.from_ == "beginning", args.follow
        ):
            prefix = f"{partition}:{offset}  " if args.offsets else ""
            print(prefix + format_line(value, args.json), flush=True)
            shown += 1
            if args.max is not None and shown >= args.max:
                break
    except KeyboardInterrupt:
        pass
    print(f"({shown} messages from {args.topic})", file=sys.stderr)
    return 0


def _broker(args: argparse.Namespace) -> int:
    from worker.broker import EmbeddedBroker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(port=args.port, storage=args.storage) as broker:
        print(f"embedded broker (Tansu) listening on {broker.bootstrap} (pid {broker.pid})")
        print(f"export VAEWATCH_KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}   # Ctrl-C to stop")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    print("broker stopped")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    w = sub.add_parser(
        "worker",
        help="the streaming worker: sensor windows in, anomaly events and corrected windows out",
        description="Consumes sensor windows, scores them with the registry's production model, "
        "publishes anomaly events and corrected windows; invalid input goes to the DLQ.",
        epilog=_env_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, field in WORKER_FLAGS.items():
        info = WorkerSettings.model_fields[field]
        kind = int if info.annotation is int else str
        w.add_argument(
            f"--{flag.replace('_', '-')}", type=kind, default=None, help=f"{info.description}"
        )
    w.set_defaults(func=_worker)

    r = sub.add_parser(
        "replay",
        help="produce sensor windows cut from CSV series into a topic",
        description="Cuts windows from every <split>.csv under each PATH and produces them "
        "(key = <dataset>/<series>). For demos, load tests and backfills through the stream.",
    )
    r.add_argument("--data", nargs="+", required=True, metavar="PATH", help="folders or CSVs")
    r.add_argument("--topic", required=True, type=argtypes.topic, help="target topic")
    r.add_argument(
        "--window", type=argtypes.positive_int, default=128, help="rows per window (default 128)"
    )
    r.add_argument(
        "--stride",
        type=argtypes.positive_int,
        default=None,
        help="rows between window starts (default: the window)",
    )
    r.add_argument(
        "--rate",
        type=argtypes.non_negative_float,
        default=0.0,
        help="windows/s; 0 = as fast as possible",
    )
    r.add_argument("--split", choices=["test", "train"], default="test", help="which CSV files")
    r.add_argument("--limit", type=argtypes.positive_int, default=None, help="stop after N windows")
    r.add_argument(
        "--bootstrap-servers", default=None, help=f"else ${env_var('kafka_bootstrap_servers')}"
    )
    r.set_defaults(func=_replay)

    t = sub.add_parser(
        "tail",
        help="print a topic's messages, one line each (episodes, events, corrected windows)",
        description="Reads a topic without joining any consumer group (commits nothing, "
        "moves no worker's offsets) and prints one readable line per message: alert "
        "episodes, anomaly events and corrected windows are summarised, anything else is "
        "printed as compact JSON.",
    )
    t.add_argument(
        "--topic",
        type=argtypes.topic,
        default="anomaly-episodes",
        help="topic to read (default anomaly-episodes)",
    )
    t.add_argument(
        "--from",
        dest="from_",
        choices=["beginning", "end"],
        default="beginning",
        help="start at the oldest message kept, or only show new ones (default beginning)",
    )
    t.add_argument(
        "-f", "--follow", action="store_true", help="keep waiting for new messages (Ctrl-C stops)"
    )
    t.add_argument("--max", type=argtypes.positive_int, default=None, help="stop after N messages")
    t.add_argument("--json", action="store_true", help="print each message's JSON as it is")
    t.add_argument("--offsets", action="store_true", help="prefix each line with partition:offset")
    t.add_argument(
        "--bootstrap-servers", default=None, help=f"else ${env_var('kafka_bootstrap_servers')}"
    )
    t.set_defaults(func=_tail)

    b = sub.add_parser("broker", help="run the embedded Kafka-compatible broker (Tansu)")
    b.add_argument("--port", type=argtypes.port, default=9092, help="port (default 9092)")
    b.add_argument("--storage", default=None, help="Tansu storage engine URL (default memory)")
    b.set_defaults(func=_broker)
