"""Misconfiguration at start, through a real worker process and a real broker (issue 15, item 3).

Settings that can never work end the worker at once with one line and exit 2; states that
may heal (no model under that name yet, a broker not up yet, a host name not in DNS) keep
it alive and unready, said in the log every WAIT_LOG_INTERVAL_S and in
`vaewatch_waiting_for{reason}`, until they heal.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.kafka_helpers import REPO, WorkerProcess, start_worker
from tests.model_factory import SAMPLE, publish, train_tiny_detector
from vaecore import Detector
from vwbase.threads import affinity_cpus, cgroup_cpu_quota, usable_cpus
from worker.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return int(reply.status), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def wait_http(port: int, path: str, status: int, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        try:
            last = http_get(port, path)
            if last[0] == status:
                return last[1]
        except OSError:
            pass  # the server is not up yet
        time.sleep(0.3)
    raise AssertionError(f"{path} never answered {status}; last: {last}")


def events(worker: WorkerProcess, name: str, **fields: Any) -> list[dict[str, Any]]:
    found = []
    for line in worker.log_text().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            doc = orjson.loads(line)
            if doc.get("event") == name and all(doc.get(k) == v for k, v in fields.items()):
                found.append(doc)
    return found


def wait_events(
    worker: WorkerProcess, name: str, count: int, timeout: float = 30.0, **fields: Any
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(worker, name, **fields)
        if len(found) >= count:
            return found
        assert worker.proc.poll() is None, worker.log_text()[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} {name} {fields}: {worker.log_text()[-2000:]}")


def waiting_gauge(metrics_text: str, reason: str) -> float:
    prefix = f'vaewatch_waiting_for{{reason="{reason}"}} '
    [line] = [x for x in metrics_text.splitlines() if x.startswith(prefix)]
    return float(line.removeprefix(prefix))


NEVER_WORKS = {
    "registry-is-a-file": ({"VAEWATCH_REGISTRY": "{file}"}, "VAEWATCH_REGISTRY"),
    "ca-file-missing": (
        {"VAEWATCH_SECURITY_PROTOCOL": "SSL", "VAEWATCH_SSL_CAFILE": "{dir}/kafka-ca/ca.crt"},
        "VAEWATCH_SSL_CAFILE: {dir}/kafka-ca/ca.crt: no such file",
    ),
    "cuda-without-cuda": ({"VAEWATCH_DEVICE": "cuda"}, "no CUDA device"),
}


@pytest.mark.parametrize("case", sorted(NEVER_WORKS))
def test_settings_that_can_never_work_stop_the_worker_at_start_with_one_line(
    case: str, kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    if case == "cuda-without-cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this host has CUDA")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    env, expected = NEVER_WORKS[case]
    fill = {"file": str(a_file), "dir": str(tmp_path)}
    log = tmp_path / "worker.log"
    started = time.monotonic()
    worker = start_worker(
        kafka_bootstrap, topics, registry, log, **{k: v.format(**fill) for k, v in env.items()}
    )
    assert worker.proc.wait(timeout=60) == 2
    assert time.monotonic() - started < 30, "refused only after a wait"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("vaewatch worker: error: ")
    assert expected.format(**fill) in lines[0]


def test_a_model_not_published_yet_is_waited_for_said_and_then_served(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path, tiny_detector: Detector
) -> None:
    """A mistyped VAEWATCH_MODEL: unready, the log names the models that do exist, and
    publishing under that name heals it without a restart."""
    port = free_port()
    worker = start_worker(
        kafka_bootstrap,
        topics,
        registry,
        tmp_path / "worker.log",
        VAEWATCH_MODEL="defualt",
        VAEWATCH_METRICS_PORT=str(port),
        VAEWATCH_WAIT_LOG_INTERVAL_S="1",
    )
    try:
        said = wait_events(worker, "waiting_for", 3, reason="model")
        assert "no version of model 'defualt'" in said[0]["why"]
        assert "(models there: default)" in said[0]["why"]
        assert said[-1]["waited_s"] >= 2.0  # periodic, not once
        assert http_get(port, "/readyz")[0] == 503
        assert http_get(port, "/healthz")[0] == 200
        assert waiting_gauge(http_get(port, "/metrics")[1], "model") == 1.0

        publish(tiny_detector, registry, "defualt")
        wait_events(worker, "waiting_over", 1, reason="model")
        wait_http(port, "/readyz", 200)
        assert waiting_gauge(http_get(port, "/metrics")[1], "model") == 0.0
    finally:
        assert worker.stop() == 0


@pytest.mark.skipif(
    usable_cpus(affinity_cpus(), cgroup_cpu_quota()) < 2,
    reason="auto runs one process on one usable CPU: nothing to advise",
)
def test_a_narrow_model_published_after_start_advises_a_restart_under_auto(
    kafka_bootstrap: str, topics: Any, registry: Path, tmp_path: Path
) -> None:
    """`VAEWATCH_PROCESSES=auto` chooses at start: with no model yet, one process. When a
    1-channel model then arrives, for which auto would start one per usable CPU, the worker
    serves it and says a restart would run more processes."""
    worker = start_worker(
        kafka_bootstrap,
        topics,
        registry,
        tmp_path / "worker.log",
        VAEWATCH_MODEL="narrow",
        VAEWATCH_PROCESSES="auto",
    )
    try:
        [chosen] = wait_events(worker, "worker_processes_chosen", 1)
        assert (chosen["processes"], chosen["model_channels"]) == (1, None)
        wait_events(worker, "waiting_for", 1, reason="model")
        publish(train_tiny_detector(steps=10, channels=1), registry, "narrow")
        [advice] = wait_events(worker, "worker_processes_restart_advised", 1)
        assert advice["model_channels"] == 1
        assert advice["would_start"] >= 2
        wait_events(worker, "waiting_over", 1, reason="model")
    finally:
        assert worker.stop() == 0


def test_a_broker_not_up_yet_is_waited_for_said_and_then_joined(
    topics: Any, registry: Path, tmp_path: Path
) -> None:
    broker_port, metrics_port = free_port(), free_port()
    worker = start_worker(
        f"127.0.0.1:{broker_port}",
        topics,
        registry,
        tmp_path / "worker.log",
        VAEWATCH_METRICS_PORT=str(metrics_port),
        VAEWATCH_WAIT_LOG_INTERVAL_S="1",
    )
    broker = EmbeddedBroker(port=broker_port)
    try:
        said = wait_events(worker, "waiting_for", 2, reason="broker")
        assert "connection refused" in said[0]["why"]
        assert http_get(metrics_port, "/readyz")[0] == 503
        assert http_get(metrics_port, "/healthz")[0] == 200
        assert waiting_gauge(http_get(metrics_port, "/metrics")[1], "broker") == 1.0

        broker.start()
        wait_events(worker, "waiting_over", 1, timeout=60, reason="broker")
        wait_http(metrics_port, "/readyz", 200)
        assert waiting_gauge(http_get(metrics_port, "/metrics")[1], "broker") == 0.0
    finally:
        assert worker.stop() == 0
        broker.stop()


def test_an_unresolvable_broker_host_is_named_within_seconds(
    topics: Any, registry: Path, tmp_path: Path
) -> None:
    host = "no-such-host.invalid"
    worker = start_worker(f"{host}:9092", topics, registry, tmp_path / "worker.log")
    try:
        [said] = wait_events(worker, "waiting_for", 1, timeout=20, reason="broker")
        assert f"cannot resolve host '{host}'" in said["why"]
    finally:
        assert worker.stop() == 0

    started = time.monotonic()
    argv = ["replay", "--data", str(SAMPLE / "nab"), "--topic", topics.input]
    replay = subprocess.run(
        [sys.executable, "-m", "vaewatch", *argv, "--bootstrap-servers", f"{host}:9092"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert replay.returncode == 3
    assert time.monotonic() - started < 20
    [line] = replay.stderr.strip().splitlines()
    assert line.startswith(
        f"vaewatch replay: error: cannot reach Kafka at {host}:9092: cannot resolve host '{host}'"
    )
