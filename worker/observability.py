"""Prometheus metrics and the health endpoints, served together on METRICS_PORT.

/metrics   Prometheus text format
/healthz   200 while the processing loop is alive (its heartbeat is recent), else 503
/readyz    200 once a model is loaded and partitions are assigned, else 503
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:  # vaecore imports torch; the metrics module must not
    from vaecore import Thresholds

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    """The worker's metrics in their own registry (tests can build several)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.consumed = Counter("vaewatch_windows_consumed", "input records consumed", registry=r)
        self.corrected = Counter(
            "vaewatch_windows_corrected", "corrected windows published", registry=r
        )
        self.events = Counter("vaewatch_anomaly_events", "anomaly events published", registry=r)
        self.dead_letters = Counter(
            "vaewatch_dead_letters", "inputs sent to the DLQ", ["error_class"], registry=r
        )
        self.batch_size = Histogram(
            "vaewatch_batch_size", "records per micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "vaewatch_batch_duration_seconds",
            "decode + score + publish + commit per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scoring_seconds = Histogram(
            "vaewatch_scoring_duration_seconds",
            "model scoring + correction per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "vaewatch_end_to_end_latency_seconds",
            "input produce timestamp to outputs acknowledged",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.window_age = Histogram(
            "vaewatch_window_age_seconds",
            "window end time to outputs acknowledged",
            buckets=(*LATENCY_BUCKETS, 900, 3600, 86400),
            registry=r,
        )
        self.lag = Gauge(
            "vaewatch_consumer_lag",
            "high-water mark minus committed",
            ["topic", "partition"],
            registry=r,
        )
        self.model_info = Gauge(
            "vaewatch_model_info", "the serving model (value 1)", ["name", "version"], registry=r
        )
        self.model_alarm_rate = Gauge(
            "vaewatch_model_false_alarm_rate",
            "per-step false-alarm rate of the serving model's window threshold "
            "(kind: target, as asked; fitted, what the calibration data allowed)",
            ["kind"],
            registry=r,
        )
        self.steps_scored = Counter(
            "vaewatch_steps_scored", "step scores of the windows scored", registry=r
        )
        self.steps_above = Counter(
            "vaewatch_steps_above_threshold",
            "step scores above the window threshold (their rate over steps_scored is the live "
            "per-step alarm rate)",
            registry=r,
        )
        self.reloads = Counter(
            "vaewatch_model_reloads", "model reload attempts", ["result"], registry=r
        )
        self.ready = Gauge("vaewatch_ready", "1 when ready to serve", registry=r)
        self.waiting_for = Gauge(
            "vaewatch_waiting_for",
            "1 while the worker waits for what it needs to serve (reason: broker, model)",
            ["reason"],
            registry=r,
        )
        self.episodes = Counter(
            "vaewatch_episode_messages",
            "alert episode messages published (status: open, update, resolved)",
            ["status"],
            registry=r,
        )
        self.open_episodes = Gauge(
            "vaewatch_open_episodes", "episodes open on the series this member owns", registry=r
        )
        self.state_series = Gauge(
            "vaewatch_state_series", "series with state held in memory by this member", registry=r
        )
        self.state_restore_seconds = Histogram(
            "vaewatch_state_restore_seconds",
            "reading and installing one partition's state changelog",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._lag_labels: set[tuple[str, int]] = set()  # (topic, partition) with a lag gauge

    def set_lag(self, lags: dict[tuple[str, int], int], assigned: set[tuple[str, int]]) -> None:
        """Lag per partition this member owns; gauges of partitions it no longer owns go.

        A gauge left behind keeps its last value forever, so after a rebalance two members
        would both report a partition and `sum by (partition)` would over-count its lag.
        """
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic=topic, partition=str(partition)).set(lag)
            self._lag_labels.add((topic, partition))
        self.forget_partitions(self._lag_labels - assigned)

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag gauges of revoked partitions (their new owner reports them)."""
        for topic, partition in list(partitions):
            if (topic, partition) in self._lag_labels:
                self.lag.remove(topic, str(partition))
                self._lag_labels.discard((topic, partition))

    def set_model(self, name: str, version: str, thresholds: Thresholds | None = None) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)
        self.model_alarm_rate.clear()
        if thresholds is None:
            return
        self.model_alarm_rate.labels(kind="target").set(thresholds.target_false_alarm_rate)
        if thresholds.fitted_false_alarm_rate is not None:  # None: a model from before it
            self.model_alarm_rate.labels(kind="fitted").set(thresholds.fitted_false_alarm_rate)

    def metric_names(self) -> set[str]:
        return {m.name for m in self.registry.collect()}


class Health:
    """Shared state the loop updates and the HTTP handler reads."""

    def __init__(self, stale_after_s: float = 60.0) -> None:
        self.stale_after_s = stale_after_s
        self.heartbeat = time.monotonic()
        self.model_loaded = False
        self.assigned = False
        self.stopped = False

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def alive(self) -> bool:
        return not self.stopped and time.monotonic() - self.heartbeat < self.stale_after_s

    def ready(self) -> bool:
        return self.alive() and self.model_loaded and self.assigned


def serve(
    port: int, metrics: Metrics, health: Health, host: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    """Start the HTTP server in a daemon thread; returns it (call .shutdown() to stop).
    Port 0: one the kernel picks (`server.server_port`)."""
    return serve_routes(port, metrics.registry, health.alive, health.ready, host)


def serve_routes(
    port: int,
    registry: CollectorRegistry,
    alive: Callable[[], bool],
    ready: Callable[[], bool],
    host: str = "0.0.0.0",
) -> ThreadingHTTPServer:
    """/metrics from `registry`, /healthz from `alive`, /readyz from `ready`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = alive()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
            elif self.path == "/readyz":
                ok = ready()
                self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # no access log on stderr

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
