"""Threshold calibration (POT, quantile) and detection metrics on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    auc_pr,
    best_f1,
    f1_at,
    f1_at_labelled_rate,
    point_adjusted_f1,
    segments,
)
from vaecore.calibration import pot_threshold, quantile_threshold, robust_spread

pytestmark = pytest.mark.unit


def test_pot_extrapolates_the_exponential_tail() -> None:
    scores = np.random.default_rng(0).exponential(1.0, 20000)
    risk = 1e-4  # beyond what 20k samples pin down empirically
    true = -np.log(risk)  # exact quantile of Exp(1)
    assert abs(pot_threshold(scores, risk) - true) / true < 0.1
    assert abs(quantile_threshold(scores, 0.01) - -np.log(0.01)) < 0.15


def test_pot_falls_back_to_the_quantile_with_too_few_points() -> None:
    scores = np.arange(20.0)
    assert pot_threshold(scores, 0.1) == quantile_threshold(scores, 0.1)


def test_spread_is_the_iqr_or_one() -> None:
    assert robust_spread(np.array([0.0, 1.0, 2.0, 3.0, 4.0])) == 2.0
    assert robust_spread(np.ones(10)) == 1.0


def test_metrics_on_a_hand_made_case() -> None:
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 0])
    perfect = labels.astype(float)
    assert auc_pr(perfect, labels) == 1.0
    assert best_f1(perfect, labels) == 1.0
    predicted = np.array([0, 0, 1, 0, 0, 1, 0, 0], dtype=bool)
    assert f1_at(predicted, labels) == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))
    assert segments(labels) == [(2, 4), (6, 7)]
    # point adjustment: one hit in segment (2,4) counts both points
    assert point_adjusted_f1(predicted, labels) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert auc_pr(perfect, np.zeros(8, dtype=int)) is None


def test_nan_scores_rank_lowest() -> None:
    labels = np.array([0, 1, 0])
    assert auc_pr(np.array([np.nan, 2.0, 1.0]), labels) == 1.0


def test_incident_precision_recall_counts_overlaps_per_alert_and_per_incident() -> None:
    from training.metrics import incident_precision_recall

    incidents = [(10, 20), (50, 60), (90, 95)]
    alerts = [(15, 30), (18, 19), (70, 80), (97, 99)]
    assert incident_precision_recall(alerts, incidents) == (0.5, 1 / 3)
    assert incident_precision_recall(alerts, incidents, slack=2) == (0.75, 2 / 3)
    assert incident_precision_recall([], incidents) == (None, 0.0)
    assert incident_precision_recall(alerts, []) == (0.0, None)


def test_f1_at_labelled_rate_flags_as_many_steps_as_are_labelled() -> None:
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    # the two highest scores are one hit and one miss: tp 1, fp 1, fn 1
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.3, 0.0, 0.1, 0.2])
    assert f1_at_labelled_rate(scores, labels) == pytest.approx(0.5)
    perfect = np.array([0.0, 0.0, 5.0, 4.0, 0.0, 0.0, 0.0, 0.0])
    assert f1_at_labelled_rate(perfect, labels) == pytest.approx(1.0)
    assert f1_at_labelled_rate(scores, np.zeros(8, dtype=int)) is None


def test_f1_at_labelled_rate_lies_between_a_threshold_and_the_best_f1() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.1).astype(int)
    scores = rng.normal(size=500) + 1.5 * labels
    budget = f1_at_labelled_rate(scores, labels)
    best = best_f1(scores, labels)
    assert budget is not None and best is not None
    assert budget <= best + 1e-12
    too_high = f1_at(scores > 3.0, labels)
    assert too_high is not None and too_high <= budget  # a far too high threshold does worse


def test_f1_at_labelled_rate_ranks_nan_lowest() -> None:
    labels = np.array([1, 0, 0, 0])
    scores = np.array([2.0, np.nan, 1.0, np.nan])
    assert f1_at_labelled_rate(scores, labels) == pytest.approx(1.0)
