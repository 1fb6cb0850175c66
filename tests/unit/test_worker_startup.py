"""Start-up misconfiguration: what can never work is refused at once, what may heal is said."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge
from structlog.testing import capture_logs

from kafkaio.client import check_reachable
from tests.model_factory import publish
from vaecore import Detector
from vwbase.errors import BrokerError, UserInputError
from worker.model_watcher import ModelWatcher
from worker.observability import Metrics
from worker.preflight import check_worker_can_start
from worker.settings import WorkerSettings, settings_from_cli
from worker.waiting import Waiting

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gauge() -> Gauge:
    return Gauge("waiting_for", "test", ["reason"], registry=CollectorRegistry())


def value(g: Gauge, reason: str) -> float:
    return float(g.labels(reason=reason)._value.get())


# --- waiting: said at once, then every `every_s`, gauge while it lasts ---------------------
def test_waiting_is_said_at_once_then_periodically_and_its_end_once() -> None:
    clock, g = Clock(), gauge()
    waiting = Waiting(g, every_s=15.0, clock=clock)
    assert value(g, "model") == 0 and value(g, "broker") == 0
    with capture_logs() as logs:
        for _ in range(7):  # every 5 s for 30 s
            waiting.still("model", "no version of model 'm'")
            clock.now += 5.0
        waiting.over("model")
        waiting.over("model")
    said = [e for e in logs if e["event"] == "waiting_for"]
    assert [e["waited_s"] for e in said] == [0.0, 15.0, 30.0]
    assert all(e["reason"] == "model" and e["log_level"] == "warning" for e in said)
    assert said[0]["why"] == "no version of model 'm'"
    assert [e["waited_s"] for e in logs if e["event"] == "waiting_over"] == [35.0]
    assert value(g, "model") == 0


def test_two_reasons_are_waited_for_independently() -> None:
    clock, g = Clock(), gauge()
    waiting = Waiting(g, every_s=10.0, clock=clock)
    waiting.still("broker", "refused")
    waiting.still("model", "none yet")
    assert value(g, "broker") == 1 and value(g, "model") == 1
    waiting.over("broker")
    assert waiting.waiting_for() == {"model"}
    assert value(g, "broker") == 0 and value(g, "model") == 1


def test_the_worker_metrics_carry_the_waiting_gauge() -> None:
    assert "vaewatch_waiting_for" in Metrics().metric_names()


# --- the model watcher says why there is no model ------------------------------------------
def model_watcher(root: Path, name: str, waiting: Waiting | None = None) -> ModelWatcher:
    return ModelWatcher(root, name, "cpu", 60.0, waiting=waiting)


def test_no_registry_yet_is_a_wait_for_a_model(tmp_path: Path) -> None:
    clock, g = Clock(), gauge()
    w = model_watcher(tmp_path / "not-yet", "default", Waiting(g, 15.0, clock))
    with capture_logs() as logs:
        assert not w.check_once()
    assert value(g, "model") == 1
    [said] = [e for e in logs if e["event"] == "waiting_for"]
    assert said["why"].startswith("no version of model 'default' in registry")
    assert "(models there: none)" in said["why"]


def test_a_mistyped_model_name_names_the_models_that_exist(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    publish(tiny_detector, tmp_path, "default")
    why = model_watcher(tmp_path, "defualt").why_no_model()
    assert "'defualt'" in why and "(models there: default)" in why


def test_versions_without_production_say_promote(tiny_detector: Detector, tmp_path: Path) -> None:
    publish(tiny_detector, tmp_path, "default", promote=False)
    why = model_watcher(tmp_path, "default").why_no_model()
    assert "has versions 1" in why and "none is promoted" in why


def test_a_refused_production_version_is_the_reason(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    publish(tiny_detector, tmp_path, "default")
    (tmp_path / "default" / "1" / "model.safetensors").write_bytes(b"broken")
    w = model_watcher(tmp_path, "default")
    w.check_once()
    assert w.current() is None
    assert w.why_no_model().startswith("the production version of 'default' was refused: ")


def test_a_model_arriving_ends_the_wait(tiny_detector: Detector, tmp_path: Path) -> None:
    g = gauge()
    w = model_watcher(tmp_path, "default", Waiting(g, 15.0, Clock()))
    w.check_once()
    assert value(g, "model") == 1
    publish(tiny_detector, tmp_path, "default")
    assert w.check_once()
    assert value(g, "model") == 0


# --- preflight: settings that can never work ------------------------------------------------
def settings(**values: object) -> WorkerSettings:
    return settings_from_cli({"metrics_port": 0, **values})


def test_a_registry_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "models"
    a_file.write_text("")
    for root in (a_file, a_file / "below"):
        with pytest.raises(UserInputError, match=r"VAEWATCH_REGISTRY / --registry: .* a file"):
            check_worker_can_start(settings(registry=root))
    check_worker_can_start(settings(registry=tmp_path / "not-yet"))  # may be created later


def test_cuda_without_a_cuda_device_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(UserInputError, match=r"VAEWATCH_DEVICE / --device: .*no CUDA device"):
            check_worker_can_start(settings(registry=tmp_path, device=device))
    check_worker_can_start(settings(registry=tmp_path, device="auto"))


def test_a_cuda_index_beyond_the_devices_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserInputError, match="'cuda:3' requested but this host has 1 CUDA"):
        check_worker_can_start(settings(registry=tmp_path, device="cuda:3"))


@pytest.mark.parametrize("field", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_a_tls_file_that_is_not_there_is_refused_naming_the_variable(
    field: str, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError) as err:
        settings(**{field: tmp_path / "ca.crt"})
    assert str(err.value) == f"VAEWATCH_{field.upper()}: {tmp_path / 'ca.crt'}: no such file"
    with pytest.raises(UserInputError, match="is not a file"):
        settings(**{field: tmp_path})
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    assert getattr(settings(**{field: tmp_path / "ca.crt"}), field) == tmp_path / "ca.crt"


@pytest.mark.parametrize("name", ["a@1", "a/b", ".hidden"])
def test_a_model_setting_that_is_no_name_is_refused(name: str) -> None:
    with pytest.raises(UserInputError, match=r"VAEWATCH_MODEL: .* is not a model name"):
        settings(model=name)


@pytest.mark.parametrize("field", ["input_topic", "events_topic", "corrected_topic", "dlq_topic"])
def test_a_topic_setting_that_kafka_would_refuse_is_refused(field: str) -> None:
    with pytest.raises(UserInputError, match=f"VAEWATCH_{field.upper()}: 'bad topic!' is not"):
        settings(**{field: "bad topic!"})


# --- the broker probe: the cause in seconds, not a 30 s timeout ----------------------------
def test_an_unresolvable_host_is_named() -> None:
    with pytest.raises(BrokerError) as err:
        check_reachable(settings(kafka_bootstrap_servers="no-such-host.invalid:9092"))
    assert "cannot resolve host 'no-such-host.invalid'" in str(err.value)


def test_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(BrokerError, match="connection refused"):
            check_reachable(settings(kafka_bootstrap_servers=f"127.0.0.1:{port}"))


def test_one_listening_server_is_enough() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        servers = f"no-such-host.invalid:9092,127.0.0.1:{port}"
        check_reachable(settings(kafka_bootstrap_servers=servers))
