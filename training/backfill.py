"""Offline scoring of CSV series with the worker's numerics (`vaewatch score` / `evaluate`).

A whole series goes through `Detector.score([values])` as one long window: the same
function the worker calls, with the same sub-window aggregation, so a backfill and the
stream give the same numbers for the same data. The per-step score reported here is the
*centred* view of the smoothed score the worker alerts on (`vaecore.smoothing`): the same
values, each attributed to the middle of the span it averages, since a backfill knows the
future. With one rolling mean, the worker's window score for a window ending at step t is
the maximum of these values over the steps the window completed; with several scales each
scale is attributed to the middle of its own span before the larger is taken, so the
short scale places an incident where it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas.series_csv import SeriesTable, write_scores_csv
from training import metrics
from vaecore import Detector
from vaecore.unscored import below_all
from vwbase.errors import UserInputError


@dataclass(frozen=True)
class SeriesScores:
    table: SeriesTable
    step: np.ndarray  # (T,) per-step score
    is_anomaly: np.ndarray  # (T,) bool at the calibrated threshold
    corrected: np.ndarray  # (T, C)


def score_table(detector: Detector, table: SeriesTable, correct: bool = True) -> SeriesScores:
    if table.channels != detector.channels:
        missing = [c for c in detector.channels if c not in table.channels]
        if missing:
            raise UserInputError(f"{table.path} lacks the model's channel {missing[0]!r}")
        index = [table.channels.index(c) for c in detector.channels]
        values = table.values[:, index]
    else:
        values = table.values
    if len(values) < detector.window:
        raise UserInputError(
            f"{table.path}: {len(values)} rows is shorter than the model window {detector.window}"
        )
    [scores] = detector.score([values])
    corrected = detector.correct([values], [scores])[0].values if correct else values
    step = detector.smoother.centred(scores.raw_step)
    is_anomaly = below_all(step) > detector.active_thresholds.window
    return SeriesScores(table, step, is_anomaly, corrected)


def write_scores(result: SeriesScores, out_dir: Path, channels: tuple[str, ...]) -> Path:
    path = out_dir / result.table.dataset / result.table.series / "scores.csv"
    write_scores_csv(
        path, result.table.timestamps, result.step, result.is_anomaly, result.corrected, channels
    )
    return path


def series_metrics(result: SeriesScores, vus: float | None) -> dict[str, Any]:
    labels = result.table.labels
    if labels is None:
        raise UserInputError(f"{result.table.path} has no label column to evaluate against")
    return {
        "n_points": len(labels),
        "n_anomalies": int(labels.sum()),
        "auc_pr": metrics.auc_pr(result.step, labels),
        "vus_pr": vus,
        "best_f1": metrics.best_f1(result.step, labels),
        "f1": metrics.f1_at(result.is_anomaly, labels),
        "pa_f1_optimistic": metrics.point_adjusted_f1(result.is_anomaly, labels),
    }


def mean_metrics(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = ["auc_pr", "vus_pr", "best_f1", "f1", "pa_f1_optimistic"]
    out: dict[str, float | None] = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out
