"""The one rule for a step or point without a score: it ranks lowest.

A NaN score means nothing was observed there (missing readings, or the smoothed score's
span held none). It is never anomalous and never outranks a real score:
- against a threshold it counts as -inf (`below_all`), so it is never flagged;
- where a finite number is needed (ranking metrics: AUC-PR, best F1, VUS-PR), it takes one
  below the lowest finite score, 0.0 when none is finite (`ranked`).
"""

from __future__ import annotations

import numpy as np


def below_all(scores: np.ndarray) -> np.ndarray:
    """`scores` with NaN as -inf: compared with any threshold, it is never above."""
    out: np.ndarray = np.nan_to_num(scores, nan=-np.inf)
    return out


def ranked(scores: np.ndarray) -> np.ndarray:
    """`scores` with every non-finite value one below the lowest finite one (0.0 if none)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    low = float(scores[finite].min()) - 1.0 if finite.any() else 0.0
    out: np.ndarray = np.where(finite, scores, low)
    return out
