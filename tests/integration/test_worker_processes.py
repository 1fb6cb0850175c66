"""Several worker processes in one container (`VAEWATCH_PROCESSES`, `worker.supervisor`),
through a real `vaewatch worker` and a real broker: they share the partitions and one
metrics port; one that dies stops the container; a killed supervisor leaves none behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.kafka_helpers import WorkerProcess, read_topic, start_worker, window_id
from tests.integration.test_worker_startup import events, http_get, wait_events, wait_http
from tests.integration.test_worker_stream import produce_many_series
from worker.broker import free_port

pytestmark = pytest.mark.integration


def start_two(
    bootstrap: str, topics: Any, registry: Path, log: Path, **extra: str
) -> tuple[WorkerProcess, list[int]]:
    """A worker of two processes, both with partitions; and the processes' pids."""
    worker = start_worker(bootstrap, topics, registry, log, VAEWATCH_PROCESSES="2", **extra)
    [started] = wait_events(worker, "worker_processes_started", 1, timeout=30)
    for index in (0, 1):
        wait_events(worker, "partitions_assigned", 1, timeout=60, process=index)
    return worker, list(started["pids"])


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in "ZX"


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.2)
    assert all(gone(p) for p in pids), f"still running: {[p for p in pids if not gone(p)]}"


def consumed_per_process(metrics_text: str) -> dict[str, float]:
    [family] = [
        f
        for f in text_string_to_metric_families(metrics_text)
        if f.name == "vaewatch_windows_consumed"
    ]
    return {s.labels["process"]: s.value for s in family.samples if s.name.endswith("_total")}


def test_two_processes_share_the_partitions_and_one_port_serves_both(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    port = free_port()
    worker, pids = start_two(
        kafka_bootstrap, topics, registry, tmp_path / "w.log", VAEWATCH_METRICS_PORT=str(port)
    )
    try:
        assert len(set(pids)) == 2 and os.getpid() not in pids
        sent = produce_many_series(kafka_bootstrap, topics.input, "p")
        corrected = read_topic(
            kafka_bootstrap, topics.corrected, len(sent), timeout_s=90, unique=window_id
        )
        assert {orjson.loads(r.value)["window_id"] for r in corrected} == sent
        wait_http(port, "/readyz", 200)
        assert http_get(port, "/healthz")[0] == 200
        consumed = consumed_per_process(http_get(port, "/metrics")[1])
        assert set(consumed) == {"0", "1"}
        assert all(v > 0 for v in consumed.values()), consumed
        assert sum(consumed.values()) >= len(sent)
        assert "vaewatch_worker_processes 2.0" in http_get(port, "/metrics")[1]
    finally:
        code = worker.stop()
    assert code == 0
    assert len(wait_events(worker, "worker_stopped", 2, timeout=5)) == 2
    wait_gone(pids, timeout=5)


def test_a_worker_process_that_dies_stops_the_container(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    worker, pids = start_two(kafka_bootstrap, topics, registry, tmp_path / "w.log")
    os.kill(pids[1], signal.SIGKILL)
    code = worker.proc.wait(timeout=60)
    assert code == 1
    [exited] = wait_events(worker, "worker_process_exited", 1, timeout=5)
    assert exited["process"] == 1 and exited["exit_code"] == -signal.SIGKILL
    wait_events(worker, "worker_stopped", 1, timeout=5, process=0)  # drained, not killed
    wait_gone(pids, timeout=5)


def test_the_processes_stop_when_the_supervisor_is_killed(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    worker, pids = start_two(kafka_bootstrap, topics, registry, tmp_path / "w.log")
    worker.proc.kill()
    worker.proc.wait(timeout=10)
    wait_gone(pids, timeout=60)
    assert len(events(worker, "supervisor_gone_stopping")) == 2  # read once: it has exited


def test_a_setting_that_can_never_work_ends_the_worker_with_its_line_and_exit_2(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    """A process's user error (here: a state topic with too few partitions, found once
    connected) reaches the operator as under one process: its one line, and exit 2."""
    from kafkaio.client import ensure_topics
    from kafkaio.settings import kafka_settings

    settings = kafka_settings(kafka_bootstrap)
    ensure_topics(settings, [topics.input], 4)
    ensure_topics(settings, [f"{topics.group}-state"], 1)  # made by hand, too small
    worker = start_worker(
        kafka_bootstrap, topics, registry, tmp_path / "w.log", VAEWATCH_PROCESSES="2"
    )
    assert worker.proc.wait(timeout=60) == 2
    lines = worker.log_text().splitlines()
    said = [x for x in lines if x.startswith("vaewatch worker: error: VAEWATCH_STATE_TOPIC")]
    assert said and "1 partitions" in said[0] and "(4)" in said[0]
    [exited] = [orjson.loads(x) for x in lines if '"worker_process_exited"' in x]
    assert exited["exit_code"] == 2
