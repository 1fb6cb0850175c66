"""Worker settings: env vars and flags become one validated object; bad values, one line."""

from __future__ import annotations

import pytest

from kafkaio.client import producer_config, servers
from vwbase.errors import UserInputError
from worker.settings import WorkerSettings, settings_from_cli


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("VAEWATCH_"):
            monkeypatch.delenv(name)
    settings = WorkerSettings()
    assert servers(settings) == ["localhost:9092"]
    assert (settings.max_batch, settings.device, settings.producer_idempotence) == (
        4096,
        "auto",
        True,
    )


def test_bootstrap_servers_are_split_and_trimmed() -> None:
    settings = settings_from_cli({"kafka_bootstrap_servers": " a:9092, [::1]:9093 ,"})
    assert servers(settings) == ["a:9092", "[::1]:9093"]


@pytest.mark.parametrize("servers", ["", "no-port", "a:9092,b", "host:port", "a b:9092"])
def test_bad_bootstrap_names_env_var_and_flag(servers: str) -> None:
    with pytest.raises(UserInputError) as err:
        settings_from_cli(
            {"kafka_bootstrap_servers": servers}, flags={"kafka_bootstrap_servers": "--bootstrap"}
        )
    message = str(err.value)
    assert message.startswith("VAEWATCH_KAFKA_BOOTSTRAP_SERVERS / --bootstrap:")
    assert "\n" not in message


@pytest.mark.parametrize(("device", "ok"), [("cpu", True), ("cuda:1", True), ("gpu", False)])
def test_device_choices(device: str, ok: bool) -> None:
    if ok:
        assert settings_from_cli({"device": device}).device == device
    else:
        with pytest.raises(UserInputError, match="VAEWATCH_DEVICE"):
            settings_from_cli({"device": device})


def test_heartbeat_must_be_below_session_timeout() -> None:
    with pytest.raises(UserInputError, match="HEARTBEAT_INTERVAL_MS must be below"):
        settings_from_cli({"session_timeout_ms": 6000, "heartbeat_interval_ms": 6000})


def test_sasl_needs_a_mechanism() -> None:
    with pytest.raises(UserInputError, match="VAEWATCH_SASL_MECHANISM is required"):
        settings_from_cli({"security_protocol": "SASL_SSL"})


def test_producer_idempotence_from_env_reaches_the_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert producer_config(settings_from_cli())["enable_idempotence"] is True
    monkeypatch.setenv("VAEWATCH_PRODUCER_IDEMPOTENCE", "false")
    config = producer_config(settings_from_cli(), linger_ms=20)
    assert config["enable_idempotence"] is False
    assert (config["acks"], config["linger_ms"]) == ("all", 20)


def test_full_producer_batches_fit_a_default_brokers_record_batch_limit() -> None:
    # Kafka's message.max.bytes defaults to 1,048,588 bytes a record batch: a fuller batch
    # would come back MESSAGE_TOO_LARGE and be split and resent
    batch = producer_config(settings_from_cli())["batch_size"]
    assert 512 * 1024 <= batch <= 1_048_588


def test_a_bad_worker_flag_is_named_in_the_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaewatch.cli import main

    monkeypatch.delenv("VAEWATCH_MAX_BATCH", raising=False)
    assert main(["worker", "--max-batch", "0", "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "VAEWATCH_MAX_BATCH / --max-batch:" in err[0]
