"""Artifact I/O: `model.safetensors` (weights, never pickle) + `manifest.json`.

Loading reads the weights file once, checks its SHA-256 against the manifest before
deserialising anything, and checks every tensor name and shape against the architecture,
so a corrupt, truncated or mismatched artifact is refused with one clear line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import safetensors
import torch
from pydantic import ValidationError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from schemas.manifest import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    Architecture,
    ModelManifest,
    Normalisation,
    Scoring,
    SmoothingScale,
)
from schemas.manifest import Thresholds as ManifestThresholds
from vaecore.detector import Detector, Thresholds
from vaecore.device import select_device
from vaecore.network import ConvVAE, VAEConfig
from vaecore.scaler import ChannelScaler
from vaecore.smoothing import Scale
from vwbase import __version__
from vwbase.errors import ModelError


def architecture_of(cfg: VAEConfig) -> Architecture:
    """The manifest's record of a network config: the same fields, by name (a test checks)."""
    return Architecture(**asdict(cfg))


def config_of(arch: Architecture) -> VAEConfig:
    """The network config a manifest describes."""
    return VAEConfig(**arch.model_dump())


def manifest_thresholds(th: Thresholds) -> ManifestThresholds:
    """The calibrated thresholds as the manifest stores them (lists instead of arrays)."""
    return ManifestThresholds(
        window=float(th.window),
        point=[float(p) for p in th.point],
        method=th.method,
        target_false_alarm_rate=th.target_false_alarm_rate,
        window_spread=th.window_spread,
        fitted_false_alarm_rate=th.fitted_false_alarm_rate,
        calibration_steps=th.calibration_steps,
    )


def core_thresholds(th: ManifestThresholds) -> Thresholds:
    """The thresholds a manifest stores, as the detector applies them."""
    return Thresholds(
        window=th.window,
        point=np.asarray(th.point, dtype=np.float64),
        method=th.method,
        target_false_alarm_rate=th.target_false_alarm_rate,
        window_spread=th.window_spread,
        fitted_false_alarm_rate=th.fitted_false_alarm_rate,
        calibration_steps=th.calibration_steps,
    )


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_artifact(
    detector: Detector,
    path: Path,
    *,
    name: str,
    version: str,
    training_data: dict[str, object] | None = None,
    metrics: dict[str, object] | None = None,
) -> ModelManifest:
    """Write weights and manifest into `path` (created); return the manifest."""
    if detector.thresholds is None:
        raise ModelError("a model needs calibrated thresholds before it can be saved")
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in detector.model.state_dict().items()}
    weights = save_safetensors(state)
    _fsync_write(path / WEIGHTS_FILE, weights)
    center, scale = detector.scaler.to_lists()
    manifest = ModelManifest(
        name=name,
        version=version,
        created_at=datetime.now(UTC),
        architecture=architecture_of(detector.model.cfg),
        channels=list(detector.channels),
        normalisation=Normalisation(center=center, scale=scale),
        scoring=Scoring(
            n_samples=detector.n_samples,
            stride=int(detector.stride or 1),
            sample_seed=detector.sample_seed,
            score_kind=detector.score_kind,
            smoothing=detector.smoothing,
            period=detector.period,
            scales=[SmoothingScale(**asdict(s)) for s in detector.scales],
        ),
        thresholds=manifest_thresholds(detector.thresholds),
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        training_data=training_data or {},
        metrics=metrics or {},
        library_versions={
            "torch": torch.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "vaewatch": __version__,
        },
    )
    write_manifest(path, manifest)
    return manifest


def write_manifest(path: Path, manifest: ModelManifest) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    _fsync_write(path / MANIFEST_FILE, text.encode())


def read_manifest(path: Path) -> ModelManifest:
    file = path / MANIFEST_FILE
    try:
        return ModelManifest.model_validate_json(file.read_bytes())
    except FileNotFoundError as exc:
        raise ModelError(f"no {MANIFEST_FILE} in {path}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise ModelError(f"invalid manifest {file}: {where}: {first['msg']}") from exc


def load_artifact(path: Path, device: str = "auto") -> Detector:
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model artifact {path} does not exist")
    manifest = read_manifest(path)
    weights_path = path / manifest.weights_file
    try:
        data = weights_path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(f"weights file {weights_path} is missing") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.weights_sha256:
        raise ModelError(
            f"checksum mismatch for {weights_path}: manifest says "
            f"{manifest.weights_sha256[:12]}…, file is {digest[:12]}…; refusing to load"
        )
    model = ConvVAE(config_of(manifest.architecture))
    try:
        state = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ModelError(f"cannot read weights {weights_path}: {exc}") from exc
    _check_state(model, state, weights_path)
    model.load_state_dict(state)
    return Detector(
        model=model,
        scaler=ChannelScaler.from_lists(
            manifest.normalisation.center, manifest.normalisation.scale
        ),
        channels=tuple(manifest.channels),
        thresholds=core_thresholds(manifest.thresholds),
        n_samples=manifest.scoring.n_samples,
        stride=manifest.scoring.stride,
        sample_seed=manifest.scoring.sample_seed,
        score_kind=manifest.scoring.score_kind,
        smoothing=manifest.scoring.smoothing,
        period=manifest.scoring.period,
        scales=tuple(Scale(**s.model_dump()) for s in manifest.scoring.scales),
        device=select_device(device),
        name=manifest.name,
        version=manifest.version,
        manifest=manifest,
    )


def _check_state(model: ConvVAE, state: dict[str, torch.Tensor], where: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected.keys() != got.keys():
        missing = sorted(expected.keys() - got.keys())[:3]
        extra = sorted(got.keys() - expected.keys())[:3]
        raise ModelError(
            f"weights {where} do not match the architecture (missing {missing}, extra {extra})"
        )
    for key, shape in expected.items():
        if got[key] != shape:
            raise ModelError(
                f"weights {where}: tensor {key} has shape {got[key]}, expected {shape}"
            )
