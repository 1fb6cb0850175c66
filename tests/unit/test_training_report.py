"""The training report draws what the data have: a test series without labels, or with no
normal (or no anomalous) step, leaves its histogram out instead of failing or drawing NaNs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from schemas.series_csv import SeriesTable
from training.report import write_report
from vaecore import Detector, EpochStats, FitHistory

pytestmark = pytest.mark.unit


def _table(detector: Detector, labels: np.ndarray | None, seed: int) -> SeriesTable:
    rows = 3 * detector.window
    values = np.random.default_rng(seed).normal(size=(rows, len(detector.channels)))
    return SeriesTable(
        path=Path(f"d/s{seed}/test.csv"),
        timestamps=[str(i) for i in range(rows)],
        channels=tuple(detector.channels),
        values=values,
        labels=labels,
    )


def _history() -> FitHistory:
    stats = EpochStats(1, 1.0, 1.0, 100.0, 0.1, 1.0)
    return FitHistory(epochs=[stats], best_epoch=1, best_val_loss=1.0, steps=1)


@pytest.mark.parametrize(
    "label_sets",
    [
        [None, "mixed"],  # one series unlabelled: the labels no longer line up with the scores
        ["all anomalous"],  # no normal test step
        ["all normal"],  # no anomalous test step
    ],
)
def test_the_score_plot_draws_only_the_parts_the_test_data_have(
    tmp_path: Path, tiny_detector: Detector, label_sets: list[str | None]
) -> None:
    rows = 3 * tiny_detector.window
    kinds = {
        "mixed": (np.arange(rows) >= rows // 2).astype(np.int8),
        "all anomalous": np.ones(rows, np.int8),
        "all normal": np.zeros(rows, np.int8),
    }
    tests = [
        _table(tiny_detector, None if kind is None else kinds[kind], seed)
        for seed, kind in enumerate(label_sets)
    ]
    val = [
        np.random.default_rng(9).normal(
            size=(2 * tiny_detector.window, len(tiny_detector.channels))
        )
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        written = write_report(tmp_path, tiny_detector, _history(), val, tests)
    assert [p.name for p in written] == ["loss.png", "scores.png", "examples.png"]
    assert all(p.stat().st_size > 0 for p in written)
