"""Threshold calibration: `calibrate` gives a detector its thresholds (as PyOD's `fit`
sets `threshold_`), from a quantile rule or Peaks-Over-Threshold on its own scores.

POT (Siffer et al., "Anomaly Detection in Streams with Extreme Value Theory", KDD 2017,
the SPOT initialisation; also used by OmniAnomaly): excesses over a high initial quantile t
follow a generalised Pareto distribution (Pickands-Balkema-de Haan). Fitting its shape
gamma and scale sigma gives the threshold exceeded with probability `risk`:

    z_q = t + sigma / gamma * ((risk * n / N_t) ** (-gamma) - 1)    (gamma != 0)
    z_q = t - sigma * log(risk * n / N_t)                             (gamma -> 0)

where n is the number of scores and N_t the number of excesses. Unlike the empirical
quantile, this extrapolates beyond the largest validation score, which matters when the
target false-alarm rate is below 1/n.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Literal

import numpy as np
from scipy import stats

from vaecore.detector import Detector, PointScores, Thresholds

MIN_EXCESSES = 10


def quantile_threshold(scores: np.ndarray, risk: float) -> float:
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return float("inf")
    return float(np.quantile(finite, 1.0 - risk))


def pot_threshold(scores: np.ndarray, risk: float, init_quantile: float = 0.98) -> float:
    """The SPOT threshold for `risk`; the quantile rule when no fit is possible."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return float("inf")
    t = float(np.quantile(finite, init_quantile))
    excesses = finite[finite > t] - t
    if excesses.size < MIN_EXCESSES or risk >= 1.0 - init_quantile:
        return quantile_threshold(finite, risk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gamma, _, sigma = stats.genpareto.fit(excesses, floc=0.0)
        except (ValueError, RuntimeError, FloatingPointError):
            return quantile_threshold(finite, risk)
    if not (math.isfinite(gamma) and math.isfinite(sigma)) or sigma <= 0:
        return quantile_threshold(finite, risk)
    r = risk * finite.size / excesses.size
    if abs(gamma) < 1e-6:
        return float(t - sigma * math.log(r))
    return float(t + sigma / gamma * (r ** (-gamma) - 1.0))


def robust_spread(scores: np.ndarray) -> float:
    """Interquartile range of the finite scores (1.0 when degenerate): the unit of severity."""
    finite = scores[np.isfinite(scores)]
    if finite.size < 2:
        return 1.0
    q75, q25 = np.quantile(finite, [0.75, 0.25])
    spread = float(q75 - q25)
    return spread if spread > 1e-9 else 1.0


MIN_TAIL_POINTS = 10  # never ask for a tail rate below 10 / n: fewer points are no evidence


def tail_rate(risk: float, n: int) -> float:
    """The per-step rate a threshold on n scores is fitted for: `risk`, or 10 / n where that
    is larger. On short training sets (SKAB: 400 steps, 10 / n = 2.5e-2) the floor, not the
    risk, sets the threshold."""
    return max(risk, MIN_TAIL_POINTS / n) if n else risk


def threshold(scores: np.ndarray, risk: float, method: str) -> float:
    """The calibrated threshold for a per-step false-alarm rate `risk` (at least 10 / n)."""
    return threshold_at(scores, tail_rate(risk, int(np.isfinite(scores).sum())), method)


def threshold_at(scores: np.ndarray, rate: float, method: str) -> float:
    """The threshold for exactly the tail rate `rate` (the floor already applied)."""
    return pot_threshold(scores, rate) if method == "pot" else quantile_threshold(scores, rate)


def part_scores(detector: Detector, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed step scores (N,) and point scores (N, C) of series parts, each its own series."""
    return _smoothed_and_points(detector, detector.point_scores(_scorable(detector, parts)))


def _scorable(detector: Detector, parts: list[np.ndarray]) -> list[np.ndarray]:
    return [v for v in parts if len(v) >= detector.window]


def _smoothed_and_points(
    detector: Detector, points: list[PointScores]
) -> tuple[np.ndarray, np.ndarray]:
    scored = detector.window_scores(points)
    return np.concatenate([s.step for s in scored]), np.concatenate([s.point for s in scored])


def standardise_scales(
    detector: Detector, points: list[PointScores], risk: float, method: str
) -> Detector:
    """Each smoothing scale in units of its own tail: center = the median of its trailing
    smoothed calibration scores, spread = the distance from there to the threshold the same
    rule puts on them, so 1.0 is that scale's own threshold on every scale and model.

    Scaled by their tails, not their interquartile ranges: on the study dump both rank
    alike, but scales in IQR units found fewer incidents as alert episodes (macro F1 0.70
    against 0.75; docs/quality.md, "Smoothing screen")."""
    if not detector.scales:
        return detector
    scales = []
    for scale in detector.scales:
        plain = replace(scale, center=0.0, spread=1.0)
        values = np.concatenate([plain.smooth(p.raw_step) for p in points])
        finite = values[np.isfinite(values)]
        if finite.size < 2:
            scales.append(plain)
            continue
        center = float(np.median(finite))
        excess = threshold(finite, risk, method) - center
        scales.append(replace(plain, center=center, spread=excess if excess > 1e-9 else 1.0))
    return replace(detector, scales=tuple(scales))


def calibrate(
    detector: Detector, parts: list[np.ndarray], risk: float, method: Literal["pot", "quantile"]
) -> Detector:
    """`detector` with thresholds on the scores the worker alerts on (smoothed) of `parts`.

    Smoothing scales are standardised first (`standardise_scales`). One rule per channel for
    the point scores; a channel never observed in `parts` has no scores and borrows the
    highest finite point threshold. The tail rate asked for never goes below 10 / n
    (`threshold`); the thresholds record the rate the window threshold was fitted for and on
    how many steps. The spread of the step scores is the unit of severity.
    """
    points_of_parts = detector.point_scores(_scorable(detector, parts))
    detector = standardise_scales(detector, points_of_parts, risk, method)
    steps, points = _smoothed_and_points(detector, points_of_parts)
    n_steps = int(np.isfinite(steps).sum())
    window_rate = tail_rate(risk, n_steps)
    window = threshold_at(steps, window_rate, method)
    point = np.array([threshold(points[:, c], risk, method) for c in range(points.shape[1])])
    finite = point[np.isfinite(point)]
    point = np.where(np.isfinite(point), point, finite.max() if finite.size else window)
    return detector.with_thresholds(
        Thresholds(
            window=window,
            point=point,
            method=method,
            target_false_alarm_rate=risk,
            window_spread=robust_spread(steps),
            fitted_false_alarm_rate=window_rate,
            calibration_steps=n_steps,
        )
    )
