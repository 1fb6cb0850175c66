"""The model manifest: everything needed to rebuild, verify and explain a model artifact.

An artifact is a directory holding `model.safetensors` (weights, no pickle) and
`manifest.json` (this model). The worker, `score` and `evaluate` all rebuild the scorer
from it, which is why normalisation, thresholds and scoring settings live here and not
in code defaults: a model version means the same numbers everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MANIFEST_SCHEMA_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Architecture(_Strict):
    """Hyper-parameters of the ConvVAE (the fields of `vaecore.network.VAEConfig`, by name)."""

    n_channels: int = Field(ge=1, le=4096)
    window: int = Field(ge=8, le=65536, description="model window length in time steps")
    latent_dim: int = Field(ge=1)
    hidden: tuple[int, ...] = Field(min_length=1, description="Conv1d widths, one per block")
    kernel_size: int = Field(ge=1)
    beta: float = Field(ge=0)
    min_logvar: float
    max_logvar: float
    variance: Literal["point", "channel"] = Field(
        default="point", description="decoder log-variance per point, or one per channel"
    )


class Normalisation(_Strict):
    """Per-channel affine normalisation fitted on training data: z = (x - center) / scale."""

    center: list[float]
    scale: list[float]


class SmoothingScale(_Strict):
    """One kernel of the smoothed score (`vaecore.smoothing.Scale`)."""

    box: int = Field(ge=1, le=4096, description="steps of each rolling-mean pass")
    passes: Literal[1, 2] = Field(description="1 = rolling mean, 2 = triangular kernel")
    center: float = Field(description="median of this scale's calibration scores")
    spread: float = Field(
        gt=0,
        description="distance from the median to this scale's own calibrated threshold: "
        "z = (s - center) / spread is 1 there",
    )


class Scoring(_Strict):
    """How scores are computed; part of the model so stream and backfill agree.

    Fields added after the first release default to what older models did, so a model
    published before them loads and scores exactly as it did.
    """

    n_samples: int = Field(ge=0, description="L latent samples; 0 = posterior mean")
    stride: int = Field(ge=1, description="sub-window stride for windows longer than `window`")
    sample_seed: int = Field(description="seed of the fixed latent noise used when L > 0")
    score_kind: Literal["nll", "error"] = Field(
        default="nll",
        description="point score: Gaussian NLL, or squared error in normalised units",
    )
    smoothing: int = Field(
        default=1,
        ge=1,
        le=4096,
        description="steps of the rolling mean of step scores the thresholds apply to; 1 = none",
    )
    period: int | None = Field(
        default=None, ge=1, description="dominant period of the training data (steps), if found"
    )
    scales: list[SmoothingScale] = Field(
        default_factory=list,
        description="standardised kernels whose max the thresholds apply to; "
        "empty = one rolling mean of `smoothing` steps (models published before scales)",
    )


class Thresholds(_Strict):
    """Calibrated on validation scores.

    `window` applies to the per-time-step score (mean NLL over channels); a window is
    anomalous when its score (the max step score) exceeds it. `point` holds one threshold
    per channel for the per-point NLL; points above it are flagged and corrected.
    """

    window: float
    point: list[float]
    method: Literal["pot", "quantile"]
    target_false_alarm_rate: float = Field(gt=0, lt=1)
    window_spread: float = Field(
        default=1.0,
        gt=0,
        description="robust spread of validation step scores; severity = (score - window) / spread",
    )
    fitted_false_alarm_rate: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="the per-step rate `window` was fitted for: target_false_alarm_rate, or "
        "10 / calibration_steps where that is larger; null in models published before it",
    )
    calibration_steps: int | None = Field(
        default=None, ge=0, description="finite step scores `window` was fitted on"
    )


class ModelManifest(_Strict):
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    created_at: datetime
    architecture: Architecture
    channels: list[str] = Field(min_length=1)
    normalisation: Normalisation
    scoring: Scoring
    thresholds: Thresholds
    weights_file: str = WEIGHTS_FILE
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training_data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _channel_lengths_agree(self) -> ModelManifest:
        n = self.architecture.n_channels
        sizes = {
            "channels": len(self.channels),
            "normalisation.center": len(self.normalisation.center),
            "normalisation.scale": len(self.normalisation.scale),
            "thresholds.point": len(self.thresholds.point),
        }
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"architecture has {n} channels but {wrong}")
        if len(set(self.channels)) != n:
            raise ValueError("channel names must be unique")
        return self
