"""A small trained model published into a registry, for tests (a few seconds on CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelstore.artifact import save_artifact
from modelstore.registry import Registry
from schemas.series_csv import read_series_csv
from training.data import cut_windows
from vaecore import ChannelScaler, ConvVAE, Detector, FitConfig, Thresholds, VAEConfig, fit
from vaecore.calibration import quantile_threshold

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
SMD = SAMPLE / "smd" / "machine-1-2"


def train_tiny_detector(
    window: int = 64, steps: int = 150, seed: int = 0, channels: int | None = None
) -> Detector:
    """A small model on the bundled SMD sample (its first `channels` channels, default all 38)."""
    table = read_series_csv(SMD / "train.csv")
    values = table.values[:, :channels]
    names = table.channels[:channels]
    scaler = ChannelScaler.fit(values)
    train = cut_windows(scaler.transform(values), window, 8)
    torch.manual_seed(seed)
    model = ConvVAE(VAEConfig(n_channels=len(names), window=window, hidden=(16, 32)))
    fit(model, train, None, FitConfig(epochs=5, batch_size=64, lr=3e-3, max_steps=steps, seed=seed))
    detector = Detector(model, scaler, names, device=torch.device("cpu"), stride=window // 2)
    [val] = detector.score([values[-1000:]])
    points = np.stack([quantile_threshold(val.point[:, c], 0.001) for c in range(values.shape[1])])
    return detector.with_thresholds(
        Thresholds(window=quantile_threshold(val.step, 0.002), point=points, window_spread=1.0)
    )


def publish(detector: Detector, registry_root: Path, name: str, promote: bool = True) -> str:
    tmp = registry_root / ".build" / f"{name}-{np.random.default_rng().integers(1 << 30)}"
    save_artifact(
        detector, tmp, name=name, version="0", training_data={"source": "tests"}, metrics={}
    )
    registry = Registry(registry_root)
    version = registry.publish(name, tmp)
    if promote:
        registry.promote(name, version)
    return version
