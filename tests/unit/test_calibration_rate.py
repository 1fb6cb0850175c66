"""The thresholds say which per-step rate they were fitted for: on short training sets the
10 / n floor, not the risk asked for, sets it (docs/quality.md, twelfth screen)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from modelstore.artifact import core_thresholds, load_artifact, save_artifact
from schemas.manifest import Thresholds as StoredThresholds
from tests.unit.test_vae_core import WINDOW, clean_signal, trained  # noqa: F401
from training.job import TrainOptions, threshold_summary
from training.job import calibrate as calibrate_for_training
from vaecore import Detector
from vaecore.calibration import calibrate, tail_rate, threshold
from worker.scorer_wire import detector_from, detector_message

pytestmark = pytest.mark.unit


def _smoothed(detector: Detector) -> Detector:
    """Tiled sub-windows and one rolling mean of 16 steps."""
    return replace(detector, stride=WINDOW, smoothing=16)


def _steps(detector: Detector, parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([s.step for s in detector.score(parts)])


@pytest.mark.parametrize("risk", [1e-3, 5e-2])
def test_the_thresholds_record_the_rate_they_were_fitted_for(
    trained: Detector,  # noqa: F811
    risk: float,
) -> None:
    parts = [clean_signal(700, seed=s) for s in (21, 22)]
    calibrated = calibrate(_smoothed(trained), parts, risk=risk, method="quantile")
    th = calibrated.active_thresholds
    steps = _steps(calibrated, parts)
    n = int(np.isfinite(steps).sum())
    assert th.calibration_steps == n
    fitted = max(risk, 10 / n)
    assert th.fitted_false_alarm_rate == pytest.approx(fitted)
    assert th.target_false_alarm_rate == risk
    assert th.window == pytest.approx(threshold(steps, fitted, "quantile"))


def test_the_floor_sets_the_rate_only_below_ten_points() -> None:
    assert tail_rate(3e-3, 400) == pytest.approx(0.025)  # SKAB: 400 calibration steps
    assert tail_rate(3e-3, 23_700) == 3e-3  # SMD: the risk itself
    assert tail_rate(3e-3, 0) == 3e-3


def test_training_warns_when_the_threshold_stands_for_more_alarms_than_asked(
    trained: Detector,  # noqa: F811
) -> None:
    detector = _smoothed(trained)
    train, held_out = clean_signal(500, seed=31), clean_signal(200, seed=32)
    with capture_logs() as logs:
        few = calibrate_for_training(detector, [train], [held_out], TrainOptions(risk=1e-3))
    [warning] = [e for e in logs if e["event"] == "threshold_fitted_above_target_rate"]
    th = few.active_thresholds
    fitted = th.fitted_false_alarm_rate
    assert fitted is not None and fitted > 1e-3
    assert warning["fitted_false_alarm_rate"] == fitted
    assert warning["calibration_steps"] == th.calibration_steps
    assert threshold_summary(th)["fitted_false_alarm_rate"] == th.fitted_false_alarm_rate
    with capture_logs() as logs:
        calibrate_for_training(detector, [train], [held_out], TrainOptions(risk=5e-2))
    assert not [e for e in logs if e["event"] == "threshold_fitted_above_target_rate"]


def test_the_fitted_rate_travels_in_the_manifest_and_to_the_scoring_process(
    trained: Detector,  # noqa: F811
    tmp_path: Path,
) -> None:
    parts = [clean_signal(700, seed=41)]
    calibrated = calibrate(_smoothed(trained), parts, risk=1e-3, method="pot")
    save_artifact(calibrated, tmp_path / "m", name="toy", version="1", training_data={}, metrics={})
    th = calibrated.active_thresholds
    loaded = load_artifact(tmp_path / "m", device="cpu").active_thresholds
    header, arrays = detector_message(calibrated)
    in_child = detector_from(json.loads(json.dumps(header)), arrays).active_thresholds
    for back in (loaded, in_child):
        assert back.fitted_false_alarm_rate == th.fitted_false_alarm_rate
        assert back.calibration_steps == th.calibration_steps
        assert back.window == th.window


def test_a_manifest_from_before_the_fitted_rate_still_loads() -> None:
    stored = StoredThresholds.model_validate(
        {"window": 2.0, "point": [1.0], "method": "pot", "target_false_alarm_rate": 3e-3}
    )
    th = core_thresholds(stored)
    assert (th.fitted_false_alarm_rate, th.calibration_steps) == (None, None)
    assert th.window == 2.0


def test_the_score_plot_says_which_rate_the_threshold_stands_for(
    trained: Detector,  # noqa: F811
) -> None:
    from training.report import threshold_label

    few = calibrate(_smoothed(trained), [clean_signal(700, seed=51)], 1e-3, "quantile")
    th = few.active_thresholds
    label = threshold_label(few)
    assert f"fitted for {th.fitted_false_alarm_rate:.2%} of steps" in label
    assert f"(target 0.10%: {th.calibration_steps:,} calibration steps)" in label
    many = few.with_thresholds(replace(th, fitted_false_alarm_rate=1e-3))
    assert threshold_label(many) == "window threshold, fitted for 0.10% of steps"
    older = few.with_thresholds(replace(th, fitted_false_alarm_rate=None))
    assert threshold_label(older) == "window threshold"
