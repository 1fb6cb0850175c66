"""`make bench-quality` counts the per-series calibration warning instead of printing it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from benchmarks.quality import EventTally

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_structlog() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


def test_the_tallied_event_is_counted_and_dropped_and_others_pass(
    restored_structlog: None, capsys: pytest.CaptureFixture[str]
) -> None:
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(),
    )
    tally = EventTally.install("threshold_fitted_above_target_rate")
    log = structlog.get_logger()
    log.warning("threshold_fitted_above_target_rate", calibration_steps=400)
    log.warning("threshold_fitted_above_target_rate", calibration_steps=1209)
    log.warning("something_else")
    printed = capsys.readouterr().out
    assert tally.count == 2
    assert "threshold_fitted_above_target_rate" not in printed
    assert "something_else" in printed
