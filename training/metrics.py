"""Detection metrics on per-step scores and 0/1 labels.

`point_adjusted_f1` is reported because much of the literature does, but it is optimistic:
one hit anywhere inside a labelled segment counts the whole segment as detected.
VUS-PR comes from the tsb-ad package (see `training.vus`), not from a re-derivation here.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from vaecore.unscored import ranked


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float | None:
    if labels.sum() == 0 or labels.sum() == len(labels):
        return None
    return float(average_precision_score(labels, ranked(scores)))


def best_f1(scores: np.ndarray, labels: np.ndarray) -> float | None:
    if labels.sum() == 0:
        return None
    precision, recall, _ = precision_recall_curve(labels, ranked(scores))
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def f1_at(predicted: np.ndarray, labels: np.ndarray) -> float | None:
    if labels.sum() == 0:
        return None
    tp = float(np.sum(predicted & (labels == 1)))
    fp = float(np.sum(predicted & (labels == 0)))
    fn = float(np.sum(~predicted & (labels == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def f1_at_labelled_rate(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """F1 when the top `labels.mean()` fraction of steps is flagged: an oracle alarm budget.

    No threshold calibrated from normal training data can know how many test steps are
    anomalous; this is the F1 of a threshold that does (ties at the cut are all flagged).
    It bounds what any calibration that only sets the alarm rate right can reach, and sits
    between F1 at a calibrated threshold and the best F1 over all thresholds.
    """
    n_anomalous = int(labels.sum())
    if n_anomalous == 0:
        return None
    clean = ranked(scores)
    cut = np.sort(clean)[::-1][n_anomalous - 1]
    return f1_at(clean >= cut, labels)


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1s as [start, end) pairs."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def point_adjusted_f1(predicted: np.ndarray, labels: np.ndarray) -> float | None:
    """F1 after point adjustment (optimistic: a segment counts as found if any point is)."""
    adjusted = predicted.copy()
    for start, end in segments(labels):
        if adjusted[start:end].any():
            adjusted[start:end] = True
    return f1_at(adjusted, labels)


def incident_precision_recall(
    alerts: list[tuple[int, int]], incidents: list[tuple[int, int]], slack: int = 0
) -> tuple[float | None, float | None]:
    """Incident-level precision and recall of alert spans against labelled incident spans.

    Spans are closed [start, end] in one unit (rows, or epoch ms). An alert is true when it
    overlaps an incident widened by `slack` on both sides (an episode opens after its first
    anomalous windows and a smoothed score lags, so a near miss is still the same incident);
    an incident is found when some alert overlaps it. None where nothing was there to count.
    """

    def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] <= b[1] + slack and b[0] - slack <= a[1]

    true_alerts = sum(any(overlaps(a, i) for i in incidents) for a in alerts)
    found = sum(any(overlaps(a, i) for a in alerts) for i in incidents)
    precision = true_alerts / len(alerts) if alerts else None
    recall = found / len(incidents) if incidents else None
    return precision, recall
