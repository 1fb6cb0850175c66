"""The VAE core: pure functions and classes shared by the worker and the training job."""

from vaecore.detector import (
    Correction,
    Detector,
    PointScores,
    Thresholds,
    WindowScores,
    sub_window_starts,
)
from vaecore.device import autocast_for, select_device, to_device
from vaecore.fit import EpochStats, FitConfig, FitHistory, evaluate_loss, fit, prepare_batch
from vaecore.network import ConvVAE, LossParts, VAEConfig, VAEOutput, gaussian_nll, negative_elbo
from vaecore.scaler import ChannelScaler

__all__ = [
    "ChannelScaler",
    "ConvVAE",
    "Correction",
    "Detector",
    "EpochStats",
    "FitConfig",
    "FitHistory",
    "LossParts",
    "PointScores",
    "Thresholds",
    "VAEConfig",
    "VAEOutput",
    "WindowScores",
    "autocast_for",
    "evaluate_loss",
    "fit",
    "gaussian_nll",
    "negative_elbo",
    "prepare_batch",
    "select_device",
    "sub_window_starts",
    "to_device",
]
