"""`worker.supervisor`'s decisions: how many processes, their CPU shares, the merged
metrics, the exit code; and `vwbase.logs.bind_process_context` across threads."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vwbase import logs
from worker.supervisor import Supervisor, cpus_per_process, merged_families, resolve_processes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("setting", "device", "cpus", "cuda", "expected"),
    [
        ("auto", "auto", 2, False, 2),
        ("auto", "auto", 1, False, 1),
        ("auto", "cpu", 16, False, 4),  # at most MAX_AUTO_PROCESSES
        ("auto", "cpu", 3, True, 3),  # asked for the CPU: the GPU does not count
        ("auto", "auto", 16, True, 1),  # one process feeds the GPU
        ("auto", "cuda:0", 16, True, 1),
        (3, "auto", 16, True, 3),  # a number is taken as given
        (1, "cpu", 2, False, 1),
    ],
)
def test_resolve_processes(setting: Any, device: str, cpus: int, cuda: bool, expected: int) -> None:
    assert resolve_processes(setting, device, cpus, cuda) == expected


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
