"""What the worker says about a scored window, beyond the wire format: the business rules.

`schemas.messages` encodes and decodes; this module decides what goes into the outputs:
how severe an anomaly is, which points an event lists, and how the model's corrections go
back into the input's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from schemas.messages import DecodedWindow, iso
from vaecore import WindowScores


def severity(score: float, threshold: float, spread: float) -> str:
    """How far above the threshold, in units of the validation scores' robust spread."""
    excess = (score - threshold) / spread if spread > 0 else float("inf")
    if excess < 1:
        return "low"
    if excess < 3:
        return "medium"
    if excess < 6:
        return "high"
    return "critical"


@dataclass(frozen=True)
class Verdict:
    """What an anomalous window's event and its episode both say, computed once."""

    severity: str
    channel_scores: dict[str, float | None]


def verdict(s: WindowScores, threshold: float, spread: float, channels: Sequence[str]) -> Verdict:
    channel_scores: dict[str, float | None] = dict(
        zip(channels, map(float, s.channel), strict=True)
    )
    return Verdict(severity(s.score, threshold, spread), channel_scores)


def point_timestamp(window: DecodedWindow, index: int) -> str:
    return iso(window.start + timedelta(milliseconds=window.interval_ms * index))


def event_points(
    window: DecodedWindow, values: np.ndarray, s: WindowScores, channels: Sequence[str]
) -> list[dict[str, Any]]:
    """The flagged points of a window, shaped like `schemas.messages.AnomalousPoint`.

    `values` is the window in the model's channel order (T, C_model), as scored.
    """
    rows, cols = np.nonzero(s.flagged)
    return [
        {
            "index": int(t),
            "timestamp": point_timestamp(window, int(t)),
            "channel": channels[int(c)],
            "value": float(values[t, c]),
            "expected": float(s.expected[t, c]),
            "score": float(s.point[t, c]),
        }
        for t, c in zip(rows, cols, strict=True)
    ]


def merge_corrected(
    window: DecodedWindow,
    model_channels: Sequence[str],
    corrected_model_values: np.ndarray,
    replaced: np.ndarray,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Put the model's corrections back into the input's layout; other values untouched.

    Values come from the decoded input except where `replaced`, whatever dtype or rounding
    the model's array has, so an untouched reading leaves the worker bit-identical.
    """
    same_layout = tuple(model_channels) == window.channels
    if same_layout and not replaced.any():  # most windows: nothing missing, nothing anomalous
        return window.values, []
    index = {c: i for i, c in enumerate(window.channels)}
    columns = [index[c] for c in model_channels]
    values: np.ndarray
    if same_layout:
        values = np.where(replaced, corrected_model_values, window.values)
    else:
        values = window.values.copy()
        values[:, columns] = np.where(replaced, corrected_model_values, values[:, columns])
    rows_idx, cols_idx = np.nonzero(replaced)
    pairs = [(int(r), columns[int(c)]) for r, c in zip(rows_idx, cols_idx, strict=True)]
    return values, pairs
