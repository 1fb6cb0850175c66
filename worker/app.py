"""`vaewatch worker`: wire settings, Kafka edge, model watcher, metrics and the loop.

Failures sorted by what to do with them: a poison message is dead-lettered (pipeline); a
broker that does not acknowledge is retried with backoff (loop); a bad model is refused
and the old one keeps serving (watcher); no model yet, or a broker not up yet, keeps the
worker unready and waiting, and says why every WAIT_LOG_INTERVAL_S (`worker.waiting`);
settings that can never work stopped it before this (`worker.preflight`); anything else
is logged and the process exits non-zero for the orchestrator.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING

import structlog

from kafkaio.client import check_reachable, ensure_topics, partition_counts
from kafkaio.settings import env_var
from vwbase.errors import BrokerError, UserInputError
from vwbase.logs import bind_process_context
from vwbase.threads import apply_torch_threads
from worker.kafka_edge import KafkaSink, KafkaSource, StateChangelog
from worker.loop import WorkerLoop
from worker.model_watcher import ModelWatcher
from worker.observability import Health, Metrics, serve
from worker.pipeline import Topics
from worker.scorer_process import ScorerProcess, choose_scorer
from worker.settings import WorkerSettings
from worker.state import SeriesStates
from worker.supervisor import SupervisorLink, resolve_processes
from worker.waiting import Waiting

if TYPE_CHECKING:
    from vaecore import Detector

log = structlog.get_logger(__name__)
MAX_CONNECT_BACKOFF_S = 15.0


def _install_signals(stop: threading.Event, sigint: bool = True) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second_signal_exiting_now", signal=signum)
            os._exit(130)
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    if sigint:
        signal.signal(signal.SIGINT, handler)


Connected = tuple[KafkaSource, KafkaSink, StateChangelog]


def _connect(
    settings: WorkerSettings, stop: threading.Event, waiting: Waiting, health: Health
) -> Connected | None:
    """Until connected, or None when asked to stop. A broker that is not up yet (or a host
    name not yet in DNS) may come: retried with bounded backoff, and said (`waiting_for`)."""
    delay = 1.0
    while not stop.is_set():
        try:
            check_reachable(settings)  # in seconds, naming the cause: DNS, refused, timeout
            if settings.create_topics:
                topics = [settings.input_topic, settings.events_topic]
                topics += [settings.corrected_topic, settings.dlq_topic, settings.episodes_topic]
                ensure_topics(settings, topics, settings.topic_partitions)
            _state_topic_like_the_input(settings)
            connected = (
                KafkaSource(settings, [settings.input_topic]),
                KafkaSink(settings),
                StateChangelog(settings, settings.state_topic),
            )
            waiting.over("broker")
            return connected
        except BrokerError as exc:
            waiting.still("broker", str(exc))
            health.beat()  # alive and retrying: /healthz 200, /readyz 503
            stop.wait(delay)
            delay = min(delay * 2, MAX_CONNECT_BACKOFF_S)
    return None


def _state_topic_like_the_input(settings: WorkerSettings) -> None:
    """The state changelog has a partition per input partition (a series' state lives on
    its input partition's number): created so when CREATE_TOPICS allows, else checked. Too
    few partitions can never work: one line, exit 2 (a record for a missing partition
    would otherwise fail at the first batch of that partition)."""
    state, source = settings.state_topic, settings.input_topic
    counts = partition_counts(settings, [source, state])
    if source not in counts:
        log.warning("input_topic_missing", topic=source, state_topic_checked=False)
        return
    if state not in counts and settings.create_topics:
        ensure_topics(settings, [state], counts[source], compacted=[state])
        counts = partition_counts(settings, [state]) | {source: counts[source]}
    if counts.get(state, 0) < counts[source]:
        have = f"{counts[state]} partitions" if state in counts else "does not exist"
        raise UserInputError(
            f"{env_var('state_topic')}: {state!r} {have}; it needs one per partition of "
            f"{source!r} ({counts[source]}), with cleanup.policy=compact"
        )


def _start_scorer(settings: WorkerSettings, usable_cpus: int) -> ScorerProcess | None:
    """The scoring process when `VAEWATCH_SCORER` resolves to process, with the torch
    thread count this process chose (same count, same arithmetic: bit-identical scores)."""
    import torch

    mode = choose_scorer(settings.scorer, settings.device, usable_cpus, torch.cuda.is_available())
    log.info("scorer_mode", scorer=mode, setting=settings.scorer, usable_cpus=usable_cpus)
    return ScorerProcess(torch.get_num_threads()) if mode == "process" else None


def _serve(
    settings: WorkerSettings, metrics: Metrics, health: Health, link: SupervisorLink | None
) -> ThreadingHTTPServer | None:
    """METRICS_PORT; or, for one of several worker processes, a port on 127.0.0.1 that the
    supervisor is told and serves through METRICS_PORT."""
    if not settings.metrics_port:
        return None
    if link is None:
        return serve(settings.metrics_port, metrics, health)
    server = serve(0, metrics, health, host="127.0.0.1")
    link.report_port(server.server_port)
    return server


def advise_processes(setting: int | str, device: str, usable_cpus: int, detector: Detector) -> None:
    """Says what `VAEWATCH_PROCESSES` would start for `detector` when it is more than the one
    process this worker runs: the count is chosen at start, and a worker started before its
    model was published chose one (`worker_processes_chosen`). Only a restart changes it."""
    would = resolve_processes(
        setting, device, usable_cpus, len(detector.channels), lambda: detector.device.type == "cuda"
    )
    if would > 1:
        log.warning(
            "worker_processes_restart_advised",
            processes=1,
            setting=setting,
            would_start=would,
            model_channels=len(detector.channels),
            why="the process count was chosen at start, before this model was published; "
            f"restart the worker to run {would} processes for it",
        )


def run_worker(settings: WorkerSettings, link: SupervisorLink | None = None) -> int:
    """The worker; `link`: this process is one of several under `worker.supervisor`."""
    bind_process_context(group=settings.group_id, input=settings.input_topic)
    threads = apply_torch_threads(settings.torch_threads, None if link is None else link.cpus)
    stop = threading.Event()
    _install_signals(stop, sigint=link is None)  # several processes: the supervisor's SIGINT
    if link is not None:
        link.watch(stop)
    metrics, health = Metrics(), Health()
    server = _serve(settings, metrics, health, link)

    started_without_model = False  # set below: one process chosen before any model existed

    def on_reload(result: str, version: str, reason: str) -> None:
        nonlocal started_without_model
        metrics.reloads.labels(result=result).inc()
        detector = watcher.current()
        if result == "loaded" and started_without_model and detector is not None:
            started_without_model = False  # advised once, for the first model
            advise_processes(settings.processes, settings.device, threads.usable_cpus, detector)

    waiting = Waiting(metrics.waiting_for, settings.wait_log_interval_s)
    watcher = ModelWatcher(
        settings.registry,
        settings.model,
        settings.device,
        settings.reload_interval_s,
        on_reload,
        waiting=waiting,
        precision=settings.precision,
    )
    log.info(
        "worker_starting",
        settings=settings.safe_dump(),
        torch_threads=threads.threads,
        torch_threads_from=threads.source,
        usable_cpus=threads.usable_cpus,
    )
    watcher.check_once()  # no model yet: says why at once, then every WAIT_LOG_INTERVAL_S
    started_without_model = (
        settings.processes == "auto" and link is None and watcher.current() is None
    )
    watcher.start()
    connected = _connect(settings, stop, waiting, health)
    if connected is None:  # stopped while waiting for the broker
        watcher.stop()
        if server is not None:
            server.shutdown()
        log.info("worker_stopped", seconds=0.0)
        return 0
    source, sink, changelog = connected
    ttl_ms = int(settings.state_ttl * 1000) if settings.state_ttl > 0 else None
    scorer = _start_scorer(settings, threads.usable_cpus)
    loop = WorkerLoop(
        source,
        sink,
        watcher.current,
        Topics(
            settings.events_topic,
            settings.corrected_topic,
            settings.dlq_topic,
            episodes=settings.episodes_topic,
            state=settings.state_topic,
        ),
        max_batch=settings.max_batch,
        max_batch_wait_ms=settings.max_batch_wait_ms,
        max_message_bytes=settings.max_message_bytes,
        flush_timeout_s=settings.flush_timeout_s,
        metrics=metrics,
        health=health,
        states=SeriesStates(rules=settings.episode_rules(), ttl_ms=ttl_ms),
        read_state=changelog.read,
        scorer=scorer,
    )
    started = time.monotonic()
    try:
        loop.run(stop)
    finally:
        health.stopped = True
        if scorer is not None:
            scorer.close()
        watcher.stop()
        sink.close()
        changelog.close()
        source.close()  # LeaveGroup: partitions move to the other members at once
        if server is not None:
            server.shutdown()
        log.info("worker_stopped", seconds=round(time.monotonic() - started, 1))
    return 0
