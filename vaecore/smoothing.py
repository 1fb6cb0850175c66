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

Several scales (`Smoother`, the default of new models): anomalies last from a few steps to
many periods, and one rolling mean fits one duration. A new model smooths at two scales,
one and two periods, each a triangular kernel (a rolling mean applied twice: weight falls
off from the middle, so a score peaks on the incident rather than on a plateau as wide as
the window), puts each in units of its own calibrated tail ((value - median) / (its own
threshold - median): 1.0 is that scale's threshold) and takes the larger: a short incident
stands out at the short scale, a slow shift at the long one (docs/quality.md, "Smoothing
screen": VUS-PR 0.584 -> 0.617 on the study dump, every family at least level). A model
without scales (published before them) keeps its one rolling mean, bit for bit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _rolling_sums(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum and count of the finite values in each trailing span of k (shorter at the start),
    along the last axis (one series, or one row per window); count None when every value is
    finite (then it is min(t + 1, k)).

    Slices of one cumulative sum (the first k spans start at 0), and no second cumulative
    sum for counts when every value is finite: this runs for every batch the worker
    scores, once per kernel pass.
    """
    n = values.shape[-1]
    head = min(k, n)
    finite = np.isfinite(values)
    all_finite = bool(finite.all())
    csum = np.zeros((*values.shape[:-1], n + 1))
    np.cumsum(values if all_finite else np.where(finite, values, 0.0), axis=-1, out=csum[..., 1:])
    total = np.empty(values.shape)
    total[..., :head] = csum[..., 1 : head + 1]
    np.subtract(csum[..., head + 1 :], csum[..., 1 : n - head + 1], out=total[..., head:])
    if all_finite:
        return total, None
    ccount = np.zeros((*values.shape[:-1], n + 1), dtype=np.int64)
    np.cumsum(finite, axis=-1, out=ccount[..., 1:])
    count = np.empty(values.shape, dtype=np.int64)
    count[..., :head] = ccount[..., 1 : head + 1]
    np.subtract(ccount[..., head + 1 :], ccount[..., 1 : n - head + 1], out=count[..., head:])
    return total, count


def trailing(raw: np.ndarray, k: int, tail: np.ndarray | None = None) -> np.ndarray:
    """Rolling mean over the k steps ending at each step; `tail` = the steps before `raw`."""
    if k <= 1:
        return np.asarray(raw, dtype=np.float64).copy()
    history = np.asarray(tail if tail is not None else [], dtype=np.float64)[-(k - 1) :]
    joined = np.concatenate([history, np.asarray(raw, dtype=np.float64)])
    return _rolling_mean(joined, k)[len(history) :]


def _rolling_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the finite values in each trailing span of k; NaN where there are none."""
    total, count = _rolling_sums(values, k)
    if count is None:  # every span full of finite values, the first k growing
        head = min(k, total.shape[-1])
        total[..., :head] /= np.arange(1, head + 1)
        total[..., head:] /= k
        return total
    mean = np.full(values.shape, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean


def centred(raw: np.ndarray, k: int) -> np.ndarray:
    """Rolling mean over k steps attributed to the span's middle step (right end truncated)."""
    return Scale(k).centred(raw)


MAX_SPAN = 4096  # longest kernel, in steps: what a series' history keeps (ScoreHistory)


@dataclass(frozen=True)
class Scale:
    """One smoothing scale: a rolling mean of `box` steps applied `passes` times (1: the
    plain rolling mean; 2: a triangular kernel of 2 * box - 1 steps), then standardised as
    (value - center) / spread with the calibration scores of this scale."""

    box: int
    passes: int = 1
    center: float = 0.0
    spread: float = 1.0

    def __post_init__(self) -> None:
        if self.box < 1 or self.passes not in (1, 2):
            raise ValueError(f"a scale needs box >= 1 and 1 or 2 passes, got {self}")
        if not self.spread > 0:
            raise ValueError(f"a scale's spread must be > 0, got {self.spread}")

    @property
    def span(self) -> int:
        """Raw steps behind one smoothed value."""
        return self.passes * (self.box - 1) + 1

    @property
    def lead(self) -> int:
        """Steps from the middle of the span to its end (what `centred` shifts by)."""
        return (self.span - 1) // 2

    def smooth(self, raw: np.ndarray, tail: np.ndarray | None = None) -> np.ndarray:
        """The trailing kernel over `raw`, `tail` = the raw steps before it; not standardised."""
        if self.passes == 1:
            return trailing(raw, self.box, tail)
        keep = 0 if tail is None else min(len(tail), self.span - 1)
        rows = self.smooth_rows(_joined(raw, tail, keep)[None, :], keep)
        return rows.reshape(-1)

    def smooth_rows(self, joined: np.ndarray, tail_len: int) -> np.ndarray:
        """`smooth` of many windows at once: `joined` holds one row per window, its first
        `tail_len` columns the steps before it; the same numbers as row by row."""
        keep = min(tail_len, self.span - 1)
        values = joined[:, tail_len - keep :]
        for _ in range(self.passes):
            values = _rolling_mean(values, self.box)
        return values[:, keep:]

    def centred(self, raw: np.ndarray) -> np.ndarray:
        """The kernel attributed to the middle of its span (right end: what exists)."""
        padded = np.concatenate([np.asarray(raw, dtype=np.float64), np.full(self.lead, np.nan)])
        return self.smooth(padded)[self.lead :]

    def standardise(self, smoothed: np.ndarray) -> np.ndarray:
        if self.center == 0.0 and self.spread == 1.0:
            return smoothed
        return (smoothed - self.center) / self.spread


@dataclass(frozen=True)
class Smoother:
    """The score the thresholds apply to: the largest standardised scale (one scale: its
    smoothed value as it is). `trailing` is what a stream knows at each step, `centred`
    what backfill reports (each scale's value attributed to the middle of its span)."""

    scales: tuple[Scale, ...]

    @property
    def span(self) -> int:
        return max(s.span for s in self.scales)

    def trailing(self, raw: np.ndarray, tail: np.ndarray | None = None) -> np.ndarray:
        return _largest([s.standardise(s.smooth(raw, tail)) for s in self.scales])

    def centred(self, raw: np.ndarray) -> np.ndarray:
        return _largest([s.standardise(s.centred(raw)) for s in self.scales])

    def trailing_many(
        self, raws: Sequence[np.ndarray], tails: Sequence[np.ndarray | None]
    ) -> list[np.ndarray]:
        """`trailing` of many windows, the same numbers: windows with the same length and
        tail length go through each kernel as one matrix (a worker batch is mostly one such
        group), instead of a dozen small numpy calls per window and kernel."""
        out: list[np.ndarray] = [np.empty(0)] * len(raws)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (raw, tail) in enumerate(zip(raws, tails, strict=True)):
            tail_len = 0 if tail is None else min(len(tail), self.span - 1)
            groups.setdefault((tail_len, len(raw)), []).append(i)
        for (tail_len, _), index in groups.items():
            joined = np.stack([_joined(raws[i], tails[i], tail_len) for i in index])
            rows = _largest([s.standardise(s.smooth_rows(joined, tail_len)) for s in self.scales])
            for j, i in enumerate(index):
                out[i] = rows[j]
        return out


def _joined(raw: np.ndarray, tail: np.ndarray | None, tail_len: int) -> np.ndarray:
    before = tail[len(tail) - tail_len :] if tail is not None and tail_len else raw[:0]
    return np.concatenate([before, raw], dtype=np.float64)


def _largest(values: list[np.ndarray]) -> np.ndarray:
    """Step-wise max, ignoring a scale that has no value (NaN) where another has one."""
    largest = values[0]
    for other in values[1:]:
        largest = np.fmax(largest, other)
    return largest


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

    def __init__(self, max_series: int | None = 100_000, max_steps: int = MAX_SPAN) -> None:
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
