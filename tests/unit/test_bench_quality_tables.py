"""`make bench-quality`'s calibration table: per family, what the worker would alert on."""

from __future__ import annotations

import pytest

from benchmarks.quality import calibration_table, summarise

pytestmark = pytest.mark.unit


def _row(series: str, fitted: float | None, alarm: float) -> dict[str, object]:
    return {
        "dataset": "skab",
        "series": series,
        "method": "vaewatch",
        "auc_pr": 0.8,
        "best_f1": 0.8,
        "f1_at_threshold": 0.6,
        "f1_at_labelled_rate": 0.7,
        "alarm_rate": alarm,
        "labelled_rate": 0.5,
        "fitted_false_alarm_rate": fitted,
    }


def test_the_table_says_which_rate_the_thresholds_were_fitted_for() -> None:
    summary = summarise([_row("0", 0.025, 0.9), _row("1", 0.015, 0.7)])
    assert summary["skab"]["vaewatch"]["fitted_false_alarm_rate"] == pytest.approx(0.02)
    header, _, skab, overall = calibration_table(summary).splitlines()[2:]
    assert header.split("|")[-2].strip() == "rate fitted for"
    assert skab.startswith("| skab (2) |")
    assert [c.strip() for c in skab.split("|")[-4:-1]] == ["0.500", "1.60", "0.0200"]
    assert overall.startswith("| overall (2) |")


def test_results_from_before_the_fitted_rate_show_a_dash() -> None:
    summary = summarise([_row("0", None, 0.9)])
    assert calibration_table(summary).splitlines()[-1].split("|")[-2].strip() == "-"
