"""The training report: PNG plots written next to the manifest of every version.

loss.png      train and validation loss per epoch (did it converge, did it overfit?)
scores.png    histogram of validation step scores with the calibrated window threshold (and the
              per-step rate it was fitted for),
              and labelled test scores when there are any
examples.png  a few windows: input, reconstruction +-2 sigma, flagged points
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from schemas.series_csv import SeriesTable
from vaecore import Detector, FitHistory

MAX_EXAMPLE_CHANNELS = 3


def write_report(
    out: Path,
    detector: Detector,
    history: FitHistory,
    val_parts: Sequence[np.ndarray],
    tests: Sequence[SeriesTable],
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        _loss(out / "loss.png", history),
        _scores(out / "scores.png", detector, val_parts, tests),
        _examples(out / "examples.png", detector, tests, val_parts),
    ]


def _loss(path: Path, history: FitHistory) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [e.epoch for e in history.epochs]
    ax.plot(epochs, [e.train_loss for e in history.epochs], label="train")
    if any(e.val_loss is not None for e in history.epochs):
        ax.plot(
            epochs,
            [np.nan if e.val_loss is None else e.val_loss for e in history.epochs],
            label="validation",
        )
    ax.axvline(history.best_epoch, color="grey", ls=":", label=f"best epoch {history.best_epoch}")
    ax.set(xlabel="epoch", ylabel="negative ELBO per window", title="Training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def threshold_label(detector: Detector) -> str:
    """The threshold's legend: the per-step rate it was fitted for, and the target where
    the calibration data were too few for it (10 / n above the risk asked for)."""
    th = detector.active_thresholds
    fitted = th.fitted_false_alarm_rate
    if fitted is None:
        return "window threshold"
    label = f"window threshold, fitted for {fitted:.2%} of steps"
    if fitted > th.target_false_alarm_rate:
        steps = th.calibration_steps or 0
        label += f"\n(target {th.target_false_alarm_rate:.2%}: {steps:,} calibration steps)"
    return label


def _scores(
    path: Path, detector: Detector, val_parts: Sequence[np.ndarray], tests: Sequence[SeriesTable]
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    val = [s.step for s in detector.score([v for v in val_parts if len(v) >= detector.window])]
    val_steps = np.concatenate(val) if val else np.empty(0)
    val_steps = val_steps[np.isfinite(val_steps)]
    bins: int | list[float] = (
        [float(b) for b in np.histogram_bin_edges(val_steps, bins=60)] if val_steps.size else 60
    )
    _density(ax, val_steps, bins, alpha=0.6, label="validation")
    labelled = [(t.values, t.labels) for t in tests if t.labels is not None][:4]
    if labelled:
        scored = detector.score([values for values, _ in labelled])
        steps = np.concatenate([s.step for s in scored])
        labels = np.concatenate([labels for _, labels in labelled])
        ok = np.isfinite(steps)
        _density(ax, steps[ok & (labels == 0)], 60, alpha=0.4, label="test normal")
        _density(ax, steps[ok & (labels == 1)], 60, alpha=0.6, label="test anomalous")
    ax.axvline(detector.active_thresholds.window, color="red", label=threshold_label(detector))
    ax.set(xlabel="smoothed step score", ylabel="density", title="Score distribution", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _density(ax: Axes, values: np.ndarray, bins: int | list[float], **style: Any) -> None:
    """A density histogram; nothing to draw (an empty part) draws nothing rather than NaNs."""
    if values.size:
        ax.hist(values, bins=bins, density=True, **style)


def _example_windows(
    detector: Detector, tests: Sequence[SeriesTable], val_parts: Sequence[np.ndarray]
) -> list[np.ndarray]:
    w = detector.window
    for t in tests:
        if t.labels is not None and t.labels.any():
            first = int(np.argmax(t.labels == 1))
            start = max(0, min(first - w // 2, len(t.values) - w))
            return [t.values[start : start + w], t.values[:w]]
    return [v[:w] for v in val_parts if len(v) >= w][:2]


def _examples(
    path: Path, detector: Detector, tests: Sequence[SeriesTable], val_parts: Sequence[np.ndarray]
) -> Path:
    windows = _example_windows(detector, tests, val_parts)
    scored = detector.score(windows)
    n_ch = min(MAX_EXAMPLE_CHANNELS, len(detector.channels))
    fig, axes = plt.subplots(len(windows), 1, figsize=(8, 2.6 * len(windows)), squeeze=False)
    for ax, window, s in zip(axes[:, 0], windows, scored, strict=True):
        order = np.argsort(np.nan_to_num(s.channel, nan=-np.inf))[::-1][:n_ch]
        t = np.arange(len(window))
        for c in order:
            line = ax.plot(t, window[:, c], lw=1, label=detector.channels[c])[0]
            color = line.get_color()
            ax.plot(t, s.expected[:, c], color=color, ls="--", lw=1)
            lo = s.expected[:, c] - 2 * s.expected_std[:, c]
            hi = s.expected[:, c] + 2 * s.expected_std[:, c]
            ax.fill_between(t, lo, hi, color=color, alpha=0.15)
            flagged = s.flagged[:, c]
            ax.scatter(t[flagged], window[flagged, c], color="red", s=12, zorder=3)
        verdict = "anomalous" if s.is_anomaly else "normal"
        ax.set_title(f"score {s.score:.1f} ({verdict}); dashed = reconstruction ±2σ, red = flagged")
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
