"""The dominant period of a series, as TSB-AD picks its sliding window.

A port of TSB-AD's `find_length_rank(data, rank=1)` (Liu & Paparrizos, "The Elephant in
the Room: Towards A Reliable Time-Series Anomaly Detection Benchmark", NeurIPS 2024, the
window its benchmark runners and VUS-PR use): the lag of the highest local maximum of the
autocorrelation over lags 3..400 of the first 20,000 steps, or 125 steps when there is none
or it falls outside 3..300. statsmodels' `acf(fft=True)` is reproduced with numpy (no
statsmodels dependency); a test checks the port against TSB-AD itself where it is
installed. Missing values are filled by linear interpolation first (TSB-AD has none).
"""

from __future__ import annotations

import numpy as np

MAX_LAG = 400
FIRST_LAG = 3
FALLBACK = 125
MAX_STEPS = 20_000


def autocorrelation(x: np.ndarray, nlags: int) -> np.ndarray:
    """statsmodels' acf(x, nlags, fft=True): biased autocovariance over the variance."""
    centred = x - x.mean()
    n = len(centred)
    size = 1 << int(np.ceil(np.log2(2 * n - 1))) if n > 1 else 2
    spectrum = np.fft.rfft(centred, n=size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size)[: nlags + 1] / n
    return acov / acov[0] if acov[0] > 0 else np.zeros(nlags + 1)


def _interpolated(x: np.ndarray) -> np.ndarray:
    missing = ~np.isfinite(x)
    if not missing.any():
        return x
    if missing.all():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    filled: np.ndarray = np.interp(idx, idx[~missing], x[~missing])
    return filled


def measured_period(series: np.ndarray) -> int | None:
    """The period `dominant_period` finds, or None where TSB-AD's rule falls back to 125 steps:
    a constant or too-short series, no local maximum of the autocorrelation, or one outside
    3..300. The fallback is a default, not a measurement: it must not vote on a period."""
    x = _interpolated(np.asarray(series, dtype=np.float64).ravel()[:MAX_STEPS])
    if len(x) <= FIRST_LAG + 2 or np.ptp(x) == 0:
        return None
    acf = autocorrelation(x, min(MAX_LAG, len(x) - 1))[FIRST_LAG:]
    inner = acf[1:-1]
    peaks = np.flatnonzero((inner > acf[:-2]) & (inner > acf[2:])) + 1
    if peaks.size == 0:
        return None
    best = int(peaks[np.argmax(acf[peaks])])
    if best < 3 or best > 300:
        return None
    return best + FIRST_LAG


def dominant_period(series: np.ndarray) -> int:
    """TSB-AD's `find_length_rank(series, rank=1)` for a 1-D series (NaN interpolated)."""
    found = measured_period(series)
    return FALLBACK if found is None else found
