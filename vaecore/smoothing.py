"""The score the worker alerts on: a rolling mean of step scores over the series' period.

Why smooth: labelled incidents in sensor data last tens to hundreds of steps, and a VAE's
per-step score is spiky (one step far off, the next one close). Every peer that beats the
raw score averages error over a window (PyOD's auto-encoders over 16-step windows, TSB-AD's
over 100, Orion a centred rolling mean). Averaging over the series' own period (one cycle
of its daily, weekly or machine rhythm) removes the rhythm's residue and keeps the
incident: on the developer data this one step lifted VUS-PR more than any change of model
(docs/quality.md).

One rolling mean, two views of it:
- `trailing` is causal: the value at step t averages the raw scores of steps
  t-k+1 .. t. The worker computes it window by window, carrying the recent raw step
  scores of each series across window boundaries (`ScoreHistory`).
- `centred` is the same numbers attributed to the middle of their span: the value at step
  t is the trailing value at step t + (k-1)//2. Backfill (`vaewatch score`, `evaluate`)
  reports it, because there the future is known and a score should sit on the step it is
  about. A stream knows the centred value of step t (k-1)//2 steps after t.
Both skip missing raw scores (NaN: no channel observed) and average what is there.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


def _rolling_sums(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the finite values in each trailing span of k (shorter at the start)."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(0, end - k)
    return csum[end] - csum[start], ccount[end] - ccount[start]


def trailing(raw: np.ndarray, k: int, tail: np.ndarray | None = None) -> np.ndarray:
    """Rolling mean over the k steps ending at each step; `tail` = the steps before `raw`."""
    if k <= 1:
        return np.asarray(raw, dtype=np.float64).copy()
    history = np.asarray(tail if tail is not None else [], dtype=np.float64)[-(k - 1) :]
    joined = np.concatenate([history, np.asarray(raw, dtype=np.float64)])
    total, count = _rolling_sums(joined, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean[len(history) :]


def centred(raw: np.ndarray, k: int) -> np.ndarray:
    """Rolling mean over k steps attributed to the span's middle step (right end truncated)."""
    lead = (k - 1) // 2
    padded = np.concatenate([np.asarray(raw, dtype=np.float64), np.full(lead, np.nan)])
    return trailing(padded, k)[lead:]


@dataclass(frozen=True)
class SeriesLink:
    """Where a window sits in its series: [start, end) and one step, in one integer unit."""

    key: str
    start: int
    end: int
    step: int = 1


class ScoreHistory:
    """Recent raw step scores of each series, so `trailing` runs on across windows.

    For each series it keeps the raw step scores of the last k-1 + (window length) steps
    before the end of the newest window applied, so the next window finds the k-1 scores
    before its start whether it follows on, overlaps the last one (sliding windows), or is a
    redelivery of it (which then gets the tail it had the first time, hence the same score).
    Missed steps (a gap) count as missing, as a backfill with those rows empty would. A
    window that ends no later than the newest applied one does not change the history.
    At most `max_series` series are kept (least recently seen dropped first; None: no bound,
    for a caller that manages the series itself, like the worker's per-series state), each
    at most `max_steps` scores (float32). `export`/`restore`/`forget` move one series' tail
    in and out (the worker's state changelog).
    """

    def __init__(self, max_series: int | None = 100_000, max_steps: int = 4096) -> None:
        self.max_series = max_series
        self.max_steps = max_steps
        self._series: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._series)

    def before(self, link: SeriesLink, k: int) -> np.ndarray | None:
        """The (up to) k-1 raw step scores before `link.start`; None if nothing is known."""
        known = self._series.get(link.key)
        if known is None or k <= 1:
            return None
        end, kept = known
        back = (end - link.start) // max(link.step, 1)  # steps from the window's start to `end`
        if back <= 0:  # follows on, maybe after a gap of -back missed steps
            missed = np.full(min(-back, k), np.nan, dtype=np.float32)
            return np.concatenate([kept, missed])[-(k - 1) :]
        if back >= len(kept):
            return None  # starts before anything kept
        return kept[: len(kept) - back][-(k - 1) :]

    def record(self, link: SeriesLink, before: np.ndarray | None, raw: np.ndarray, k: int) -> None:
        """Remember `raw` (the window's raw step scores, after `before`) if the window is newer."""
        known = self._series.get(link.key)
        if known is not None and link.end <= known[0]:
            return
        keep = min(k - 1 + len(raw), self.max_steps)
        joined = np.concatenate([before if before is not None else [], raw])
        self._series[link.key] = (link.end, joined[-keep:].astype(np.float32))
        self._series.move_to_end(link.key)
        while self.max_series is not None and len(self._series) > self.max_series:
            self._series.popitem(last=False)

    def export(self, key: str) -> tuple[int, np.ndarray] | None:
        """The series' tail: the end it reaches and the raw step scores before it."""
        known = self._series.get(key)
        return None if known is None else (known[0], known[1].copy())

    def restore(self, key: str, end: int, kept: np.ndarray) -> None:
        self._series[key] = (end, np.asarray(kept, dtype=np.float32)[-self.max_steps :])
        self._series.move_to_end(key)

    def forget(self, key: str) -> None:
        self._series.pop(key, None)
