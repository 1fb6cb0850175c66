"""Per-channel normalisation fitted on training data and carried in the artifact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SCALE = 1e-6


@dataclass(frozen=True)
class ChannelScaler:
    """z = (x - center) / scale, per channel. NaN (missing) stays NaN.

    Median and standard deviation are computed ignoring NaN. A channel constant in training
    data (several SMD channels are) gets scale 1, so a test value that moves does not divide
    by zero; its deviation is then measured in raw units.
    """

    center: np.ndarray  # (C,) float64
    scale: np.ndarray  # (C,) float64, > 0

    @classmethod
    def fit(cls, values: np.ndarray) -> ChannelScaler:
        flat = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
        observed = ~np.isnan(flat)
        if not observed.any(axis=0).all():
            raise ValueError("every channel needs at least one observed value to fit the scaler")
        center = np.nanmedian(flat, axis=0)
        scale = np.nanstd(flat, axis=0)
        scale = np.where(scale > MIN_SCALE, scale, 1.0)
        return cls(center=center, scale=scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        z: np.ndarray = ((values - self.center) / self.scale).astype(np.float32)
        return z

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        x: np.ndarray = np.asarray(z, dtype=np.float64) * self.scale + self.center
        return x

    def to_lists(self) -> tuple[list[float], list[float]]:
        return [float(c) for c in self.center], [float(s) for s in self.scale]

    @classmethod
    def from_lists(cls, center: list[float], scale: list[float]) -> ChannelScaler:
        return cls(np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64))
