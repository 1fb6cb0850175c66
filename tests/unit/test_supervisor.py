"""`worker.supervisor`'s decisions: how many processes, their CPU shares, the merged
metrics, the exit code; and `vwbase.logs.bind_process_context` across threads."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelstore.registry import Registry
from schemas.manifest import MANIFEST_FILE
from tests.model_factory import publish, train_tiny_detector
from vaecore import Detector
from vwbase import logs, threads
from worker import cli as worker_cli
from worker.settings import WorkerSettings
from worker.supervisor import (
    Supervisor,
    cpus_per_process,
    merged_families,
    model_channels,
    resolve_processes,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("setting", "device", "cpus", "cuda", "channels", "expected"),
    [
        ("auto", "auto", 2, False, 1, 2),
        ("auto", "auto", 1, False, 1, 1),
        ("auto", "cpu", 16, False, 1, 4),  # at most MAX_AUTO_PROCESSES
        ("auto", "cpu", 3, True, 1, 3),  # asked for the CPU: the GPU does not count
        ("auto", "auto", 16, True, 1, 1),  # one process feeds the GPU
        ("auto", "cuda:0", 16, True, 1, 1),
        ("auto", "auto", 2, False, 2, 1),  # wider than AUTO_MAX_CHANNELS: one process
        ("auto", "cpu", 16, False, 38, 1),
        ("auto", "auto", 2, False, None, 1),  # no model published yet: width unknown
        (3, "auto", 16, True, 38, 3),  # a number is taken as given
        (2, "cpu", 2, False, None, 2),
        (1, "cpu", 2, False, 1, 1),
    ],
)
def test_resolve_processes(
    setting: Any, device: str, cpus: int, cuda: bool, channels: int | None, expected: int
) -> None:
    assert resolve_processes(setting, device, cpus, channels, lambda: cuda) == expected


def test_model_channels_reads_the_published_manifest(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    assert model_channels(registry, "m") is None  # nothing published: unknown, not an error
    version = publish(tiny_detector, registry, "m")
    assert model_channels(registry, "m") == len(tiny_detector.channels) == 38
    assert model_channels(registry, f"m@{version}") == 38
    assert model_channels(registry, "m@no-such-version") is None
    (Registry(registry).resolve("m").path / MANIFEST_FILE).write_text("{not json")
    assert model_channels(registry, "m") is None  # unreadable: the worker will say why


def test_auto_runs_several_processes_only_for_a_single_channel_model(
    tiny_detector: Detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "usable_cpus", lambda *_: 2)
    monkeypatch.setattr(worker_cli, "_cuda_available", lambda: False)
    registry = tmp_path / "registry"
    publish(train_tiny_detector(steps=10, channels=1), registry, "narrow")
    publish(tiny_detector, registry, "wide")

    def chosen(model: str, processes: int | str = "auto") -> tuple[int, int]:
        settings = WorkerSettings(registry=registry, model=model, processes=processes)
        return worker_cli._processes(settings)

    with structlog.testing.capture_logs() as logged:
        assert chosen("narrow") == (2, 1)  # two processes, one CPU each
        assert chosen("wide") == (1, 2)
        assert chosen("not-yet-published") == (1, 2)
    whys = [line["why"] for line in logged if line["event"] == "worker_processes_chosen"]
    assert whys[0] == "a 1-channel model: one process per usable CPU"
    assert whys[1].startswith("a 38-channel model")
    assert whys[2].startswith("no model readable under that name yet")
    assert chosen("wide", 2) == (2, 1)  # a number is taken as given
    assert WorkerSettings().processes == "auto"


@pytest.mark.parametrize(
    ("cpus", "processes", "share"), [(2, 2, 1), (8, 4, 2), (1, 3, 1), (5, 2, 2)]
)
def test_cpus_per_process(cpus: int, processes: int, share: int) -> None:
    assert cpus_per_process(cpus, processes) == share


def _process_metrics(consumed: int, lag: dict[str, int], batch: float) -> str:
    r = CollectorRegistry()
    Counter("vaewatch_windows_consumed", "input records consumed", registry=r).inc(consumed)
    gauge = Gauge("vaewatch_consumer_lag", "lag", ["partition"], registry=r)
    for partition, value in lag.items():
        gauge.labels(partition=partition).set(value)
    Histogram("vaewatch_batch_size", "records", buckets=(1, 10), registry=r).observe(batch)
    return generate_latest(r).decode()


class _Merged:
    def __init__(self, texts: list[tuple[int, str]]) -> None:
        self.texts = texts

    def collect(self) -> Iterator[Any]:
        return merged_families(self.texts)


def test_merged_metrics_label_each_process_and_keep_every_sample() -> None:
    texts = [(0, _process_metrics(5, {"0": 3}, 4.0)), (1, _process_metrics(7, {"1": 9}, 20.0))]
    registry = CollectorRegistry()
    registry.register(_Merged(texts))
    served = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(served)}
    consumed = families["vaewatch_windows_consumed"]
    assert consumed.type == "counter"
    totals = {s.labels["process"]: s.value for s in consumed.samples if s.name.endswith("_total")}
    assert totals == {"0": 5.0, "1": 7.0}
    lag = {
        (s.labels["process"], s.labels["partition"]): s.value
        for s in families["vaewatch_consumer_lag"].samples
    }
    assert lag == {("0", "0"): 3.0, ("1", "1"): 9.0}
    buckets = {
        (s.labels["process"], s.labels["le"]): s.value
        for s in families["vaewatch_batch_size"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets[("0", "10.0")] == 1.0 and buckets[("1", "10.0")] == 0.0
    assert buckets[("1", "+Inf")] == 1.0
    assert served.count("# TYPE vaewatch_windows_consumed_total counter") == 1


def _supervisor_with_exits(*codes: int | None) -> Supervisor:
    supervisor = Supervisor.__new__(Supervisor)
    supervisor.children = [
        SimpleNamespace(index=i, process=SimpleNamespace(exitcode=c))  # type: ignore[misc]
        for i, c in enumerate(codes)
    ]
    return supervisor


@pytest.mark.parametrize(
    ("codes", "failed", "expected"),
    [
        ((0, 0), None, 0),  # stopped on request, both drained
        ((0, 3), None, 3),  # stopped on request, one failed while draining
        ((-15, 0), None, 1),  # killed after the grace: no code of its own
        ((0, 2), 1, 2),  # a process ended with a user error: its code
        ((0, -9), 1, 1),  # a process was killed: 1
        ((0, 0), 1, 1),  # a process ended "cleanly" on its own: still a failure
    ],
)
def test_exit_code(codes: tuple[int | None, ...], failed: int | None, expected: int) -> None:
    supervisor = _supervisor_with_exits(*codes)
    child = None if failed is None else supervisor.children[failed]
    assert supervisor._exit_code(child) == expected


def test_process_context_reaches_lines_logged_by_other_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_PROCESS_CONTEXT", {})
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    logs.configure_logging("INFO", "json")
    try:
        logs.bind_process_context(process=1, group="g")
        thread = threading.Thread(target=lambda: structlog.get_logger("t").info("from_a_thread"))
        thread.start()
        thread.join()
    finally:
        structlog.reset_defaults()
    [line] = err.getvalue().splitlines()
    doc = orjson.loads(line)
    assert doc["event"] == "from_a_thread"
    assert (doc["process"], doc["group"]) == (1, "g")


SUPERVISOR_PROBE = """
import sys
from worker.cli import _processes
from worker.settings import WorkerSettings
count, cpus = _processes(WorkerSettings(processes="auto", device="auto"))
print(f"COUNT={count} TORCH={'torch' in sys.modules}")
"""


def test_deciding_how_many_processes_leaves_torch_out_of_the_supervisor() -> None:
    """The CUDA question is asked in a short-lived interpreter: imported in the supervisor,
    torch held ~240 MB there for nothing (measured 241 against 58 MB)."""
    done = subprocess.run(
        [sys.executable, "-c", SUPERVISOR_PROBE], capture_output=True, text=True, timeout=120
    )
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("COUNT=")]
    assert line.endswith("TORCH=False"), line
    assert int(line.split()[0].removeprefix("COUNT=")) >= 1


def test_the_cuda_question_is_asked_only_when_it_decides(
    tiny_detector: Detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking starts an interpreter that imports torch (seconds at every start): for a wide
    model or none, auto is 1 process whatever the answer."""
    asked: list[bool] = []

    def cuda_available() -> bool:
        asked.append(True)
        return False

    monkeypatch.setattr(worker_cli, "_cuda_available", cuda_available)
    registry = tmp_path / "registry"
    publish(tiny_detector, registry, "wide")
    worker_cli._processes(WorkerSettings(registry=registry, model="wide"))
    worker_cli._processes(WorkerSettings(registry=registry, model="absent"))
    assert asked == []


def _detector_with(channels: int, device: str) -> Detector:
    """Only what `advise_processes` reads of a detector: its channels and device."""
    fake = SimpleNamespace(
        channels=tuple(f"c{i}" for i in range(channels)), device=SimpleNamespace(type=device)
    )
    return fake  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("setting", "device", "channels", "on", "cpus", "advised"),
    [
        ("auto", "auto", 1, "cpu", 2, 2),  # the case: a narrow model arrived after start
        ("auto", "cpu", 1, "cpu", 4, 4),
        ("auto", "auto", 8, "cpu", 2, None),  # wider: one process is what auto chooses anyway
        ("auto", "auto", 1, "cuda", 2, None),  # a GPU: one process keeps it fed
        ("auto", "auto", 1, "cpu", 1, None),  # one usable CPU
        (1, "auto", 1, "cpu", 2, None),  # a count the operator set is never second-guessed
    ],
)
def test_a_worker_that_chose_before_its_model_advises_a_restart_only_when_auto_would_differ(
    setting: int | str, device: str, channels: int, on: str, cpus: int, advised: int | None
) -> None:
    from worker.app import advise_processes

    with structlog.testing.capture_logs() as logged:
        advise_processes(setting, device, cpus, _detector_with(channels, on))
    said = [e for e in logged if e["event"] == "worker_processes_restart_advised"]
    if advised is None:
        assert said == []
    else:
        [advice] = said
        assert advice["would_start"] == advised
        assert advice["model_channels"] == channels
        assert f"restart the worker to run {advised} processes" in advice["why"]
