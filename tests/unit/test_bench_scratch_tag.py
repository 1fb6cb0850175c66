"""`benchmarks.speed.scratch_tag` when the broker is gone: the measurement's own error is what
the caller sees, and the topics left behind are only a warning."""

from __future__ import annotations

import kafka.admin
import pytest
from kafka.errors import KafkaTimeoutError

from benchmarks.speed import scratch_tag

pytestmark = pytest.mark.unit


def _no_broker(**_: object) -> None:
    raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9")


def _measurement_that_fails() -> None:
    with scratch_tag("127.0.0.1:9"):
        raise RuntimeError("worker died")


def test_a_gone_broker_does_not_hide_the_measurements_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", _no_broker)
    with pytest.raises(RuntimeError, match="worker died"):
        _measurement_that_fails()
    assert "not deleted" in capsys.readouterr().err
