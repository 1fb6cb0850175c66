"""Several worker processes in one container: `VAEWATCH_PROCESSES` (issue 14).

One worker process is one interpreter: on narrow windows its main thread (poll, decode,
encode, send, commit) is busy ~100% of the time and the second core idles ("Where the time
goes" in docs/benchmarks.md). N processes, each a full worker and a member of the consumer group,
use N cores; the group spreads the partitions and the per-series state moves with them
(contract §7), exactly as with N containers. This module is the parent that runs them:

    vaewatch worker (supervisor) --spawn--> worker process 0 (run_worker, its own GIL)
                                 --spawn--> worker process 1 ...

- **Fail fast.** A worker process that exits ends the container: the others are stopped
  (SIGTERM, their usual drain) and the supervisor exits with the first one's exit code, so
  the orchestrator restarts the whole container. Nothing is committed that was not
  acknowledged, so nothing is lost (contract §6).
- **Signals.** SIGTERM or SIGINT to the supervisor is forwarded to every process as SIGTERM;
  a second one kills them. The processes ignore SIGINT (Ctrl-C reaches the whole process
  group; the supervisor decides). A supervisor that dies, even by SIGKILL, closes each
  process's link pipe, and the process stops as on SIGTERM.
- **One port.** Each process serves its metrics and health on 127.0.0.1 at a port of the
  kernel's choosing and says which over its link. The supervisor serves METRICS_PORT:
  /metrics merges the processes' metrics with a `process` label; /healthz is 200 while every
  process is alive and healthy; /readyz is 200 while every process is alive and healthy and
  at least one is ready (a process with no partition stands by, and is not ready alone).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry, Gauge, Metric
from prometheus_client.parser import text_string_to_metric_families

from modelstore.registry import Registry
from schemas.manifest import MANIFEST_FILE, ModelManifest
from vwbase.errors import VaewatchError
from vwbase.logs import bind_process_context
from worker.observability import serve_routes
from worker.settings import AUTO_MAX_CHANNELS, MAX_AUTO_PROCESSES, WorkerSettings

log = structlog.get_logger(__name__)
SCRAPE_TIMEOUT_S = 2.0
STOP_GRACE_S = 15.0  # beyond the processes' own SHUTDOWN_TIMEOUT_S, before they are killed


def narrow_model(channels: int | None) -> bool:
    """A model of known width, narrow enough for `auto` to run several processes."""
    return channels is not None and channels <= AUTO_MAX_CHANNELS


def resolve_processes(
    setting: int | str,
    device: str,
    usable_cpus: int,
    channels: int | None,
    cuda_available: Callable[[], bool],
) -> int:
    """`VAEWATCH_PROCESSES` resolved. auto = one per usable CPU (at most MAX_AUTO_PROCESSES)
    for a model of at most AUTO_MAX_CHANNELS channels on a CPU device; otherwise 1: for wider
    models (one process with a scoring process is faster there), while the model's width is
    unknown (`channels` None: nothing published under that name yet), and on a GPU (one
    process keeps it fed; each more holds a CUDA context). `cuda_available` is called only
    when its answer decides (device `auto` and a narrow model)."""
    if isinstance(setting, int):
        return setting
    if not narrow_model(channels):
        return 1
    on_cpu = device == "cpu" or (device == "auto" and not cuda_available())
    return max(1, min(usable_cpus, MAX_AUTO_PROCESSES)) if on_cpu else 1


def model_channels(registry: Path, model: str) -> int | None:
    """The channel count of `model` (NAME or NAME@VERSION) from its manifest, read without
    torch; None while the registry has none under that name or it cannot be read (the
    worker then waits for it and says why, `worker.waiting`)."""
    try:
        path = Registry(registry).resolve(model).path / MANIFEST_FILE
        return ModelManifest.model_validate_json(path.read_bytes()).architecture.n_channels
    except (VaewatchError, OSError, ValueError):
        return None


def cpus_per_process(usable_cpus: int, processes: int) -> int:
    """Each process's share of the usable CPUs (its torch threads and scorer mode follow)."""
    return max(1, usable_cpus // processes)


# --- the worker process's side -----------------------------------------------------------
class SupervisorLink:
    """A worker process's end of its pipe to the supervisor: it reports its metrics port,
    and stops the process (as SIGTERM would) when the supervisor is gone."""

    def __init__(self, conn: Connection, index: int, cpus: int) -> None:
        self.conn, self.index, self.cpus = conn, index, cpus

    def report_port(self, port: int) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(port)

    def watch(self, stop: threading.Event) -> None:
        """Stop when the supervisor closes its end (it stopped, or died)."""

        def wait_for_eof() -> None:
            try:
                while True:
                    self.conn.recv()
            except (EOFError, OSError):
                if not stop.is_set():
                    log.warning("supervisor_gone_stopping")
                    stop.set()

        threading.Thread(target=wait_for_eof, name="supervisor-link", daemon=True).start()


def _process_main(
    settings: WorkerSettings, conn: Connection, index: int, cpus: int, setup: Callable[[], None]
) -> None:
    """Entry point of a spawned worker process: logging as the supervisor's, then the worker.
    An error ends it as the `vaewatch` command would: one line, its exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup()
    bind_process_context(process=index)
    from worker.app import run_worker  # the worker imports this module (SupervisorLink)

    try:
        code = run_worker(settings, SupervisorLink(conn, index, cpus))
    except VaewatchError as exc:
        sys.stderr.write(f"vaewatch worker: error: {exc}\n")  # one write: stderr is shared
        sys.stderr.flush()
        code = exc.exit_code
    raise SystemExit(code)


# --- the supervisor ----------------------------------------------------------------------
@dataclass
class WorkerChild:
    """One worker process as the supervisor sees it."""

    index: int
    process: BaseProcess
    conn: Connection
    _port: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def port(self) -> int | None:
        """The process's metrics port, once it has said it."""
        with self._lock:
            with contextlib.suppress(EOFError, OSError):
                while self._port is None and self.conn.poll():
                    self._port = int(self.conn.recv())
            return self._port

    def get(self, path: str) -> tuple[int, str] | None:
        """(status, body) of GET path on the process's port; None when it has none or is
        unreachable."""
        port = self.port()
        if port is None:
            return None
        url = f"http://127.0.0.1:{port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return None


def merged_families(texts: Sequence[tuple[int, str]]) -> Iterator[Metric]:
    """The processes' metrics (index, Prometheus text) as one set of families, each sample
    labelled with its process; `sum without (process)` gives the container's totals."""
    families: dict[str, Metric] = {}
    for index, text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for sample in family.samples:
                labels = {**sample.labels, "process": str(index)}
                merged.samples.append(sample._replace(labels=labels))
    yield from families.values()


class _ProcessesCollector:
    """Scrapes every process at collection time (the supervisor's /metrics)."""

    def __init__(self, children: Sequence[WorkerChild]) -> None:
        self.children = children

    def collect(self) -> Iterator[Metric]:
        texts = []
        for child in self.children:
            got = child.get("/metrics")
            if got is not None and got[0] == 200:
                texts.append((child.index, got[1]))
        return merged_families(texts)


def _healthy(child: WorkerChild) -> bool:
    """Alive, and its own /healthz is 200 (or it has no port yet: still starting)."""
    if not child.process.is_alive():
        return False
    if child.port() is None:
        return True
    got = child.get("/healthz")
    return got is not None and got[0] == 200


def _ready(child: WorkerChild) -> bool:
    got = child.get("/readyz")
    return got is not None and got[0] == 200


def pod_health(children: Sequence[WorkerChild]) -> tuple[bool, bool]:
    """(alive, ready) of the container: every process healthy; and one ready."""
    alive = all(_healthy(c) for c in children)
    return alive, alive and any(_ready(c) for c in children)


def _serve_pod(port: int, children: Sequence[WorkerChild]) -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    registry.register(_ProcessesCollector(children))
    processes = Gauge(
        "vaewatch_worker_processes", "worker processes alive in this container", registry=registry
    )
    processes.set_function(lambda: sum(c.process.is_alive() for c in children))
    return serve_routes(
        port,
        registry,
        alive=lambda: pod_health(children)[0],
        ready=lambda: pod_health(children)[1],
    )


class Supervisor:
    """Starts the worker processes, watches them, stops them; `run` returns the exit code."""

    def __init__(
        self,
        settings: WorkerSettings,
        count: int,
        cpus: int,
        setup: Callable[[], None],
    ) -> None:
        self.settings, self.count, self.cpus, self.setup = settings, count, cpus, setup
        self.stop = threading.Event()
        self.children: list[WorkerChild] = []

    def run(self) -> int:
        self._install_signals()
        ctx = multiprocessing.get_context("spawn")  # no fork: torch's threads, locks, sockets
        for index in range(self.count):
            self.children.append(self._start(ctx, index))
        port = self.settings.metrics_port
        server = _serve_pod(port, self.children) if port else None
        log.info(
            "worker_processes_started",
            processes=self.count,
            pids=[c.process.pid for c in self.children],
            cpus_each=self.cpus,
        )
        try:
            failed = self._watch()
        finally:
            self._stop_all()
            if server is not None:
                server.shutdown()
        return self._exit_code(failed)

    def _start(self, ctx: multiprocessing.context.SpawnContext, index: int) -> WorkerChild:
        ours, theirs = ctx.Pipe(duplex=True)
        child_settings = self.settings.model_copy(update={"processes": 1})
        process = ctx.Process(
            target=_process_main,
            args=(child_settings, theirs, index, self.cpus, self.setup),
            name=f"vaewatch-worker-{index}",
        )
        process.start()
        theirs.close()  # only the process holds it now: our exit is its EOF
        return WorkerChild(index, process, ours)

    def _watch(self) -> WorkerChild | None:
        """Until asked to stop (None) or a process exits (that one)."""
        sentinels = {c.process.sentinel: c for c in self.children}
        while not self.stop.is_set():
            for ready in wait(list(sentinels), timeout=1.0):
                child = next(c for sentinel, c in sentinels.items() if sentinel == ready)
                child.process.join()
                log.error(
                    "worker_process_exited",
                    process=child.index,
                    pid=child.process.pid,
                    exit_code=child.process.exitcode,
                    stopping_the_others=True,
                )
                return child
        return None

    def _stop_all(self) -> None:
        """SIGTERM to every process (their drain), then kill what is left after the grace."""
        self.stop.set()
        for child in self.children:
            if child.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout_s + STOP_GRACE_S
        for child in self.children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.warning("worker_process_killed", process=child.index, pid=child.process.pid)
                child.process.kill()
                child.process.join(5.0)
            child.conn.close()

    def _exit_code(self, failed: WorkerChild | None) -> int:
        """The code of the process that ended on its own (1 when it gave none, or 0: a
        worker process never ends on its own, and the container is short of one); else,
        stopped on request, 0 unless one failed while draining."""
        if failed is not None:
            code = failed.process.exitcode
            return code if code is not None and code > 0 else 1
        bad = [c.process.exitcode for c in self.children if c.process.exitcode != 0]
        if not bad:
            return 0
        return next((code for code in bad if code is not None and code > 0), 1)

    def _install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                log.warning("second_signal_killing_worker_processes", signal=signum)
                for child in self.children:
                    child.process.kill()
                os._exit(130)
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
