"""Score + correct with every array on the model's device: the worker's path on CUDA.

On a GPU the network is a small part of score + correct. In the H200 runs (docs/benchmarks.md,
"GPU") 76-91% of one score + correct went to numpy on the host: normalising, cutting
sub-windows, overlap-adding them, point and step scores, and three correction rounds that each
send the replaced windows through all of that again. Here each group of equal-length windows is
uploaded once, all of that runs as tensor operations on the device, and each result comes back
once.

The arithmetic is the host path's (`Detector.point_scores` + `Detector.correct`) operation
for operation, in the same dtypes: float64 wherever numpy promotes (normalisation, raw
units, step and channel means), float32 where numpy stays in it. Results agree with it to
float rounding: sums may run in another order (tests/unit/test_resident.py). Every point
that is not replaced is returned bit-identical, as on the host path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vaecore.fit import CLIP
from vaecore.tiling import overlap_slices

Forward = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
# points (steps x channels) of raw windows on the device at once: ~130 bytes each at the
# peak (inputs, sub-windows, network outputs, sums, results; 1.06 GB for 2^23 points of
# 128 x 38 windows, measured on CPU), so about 1 GB of device memory
RESIDENT_POINTS = 1 << 23


@dataclass(frozen=True)
class DeviceModel:
    """What the device path needs of a `Detector`, as tensors on its device."""

    forward: Forward  # (B, C, W) encoder input, target -> point NLL, mean, logvar (B, C, W)
    network_context: Callable[[], AbstractContextManager[object]]  # autocast for the network
    center: Tensor  # (C,) float64: the scaler's
    scale: Tensor  # (C,) float64
    point_threshold: Tensor  # (C,) float64
    window: int
    stride: int
    max_batch: int  # sub-windows per network pass
    error_score: bool  # score_kind == "error"

    @property
    def device(self) -> torch.device:
        return self.center.device


@dataclass(frozen=True)
class GroupResult:
    """Host arrays for n windows of one length L: the fields of `PointScores` and
    `Correction`, each with a leading window axis."""

    point: np.ndarray  # (n, L, C)
    raw_step: np.ndarray  # (n, L)
    channel: np.ndarray  # (n, C)
    expected: np.ndarray  # (n, L, C) float64
    expected_std: np.ndarray  # (n, L, C) float64
    flagged: np.ndarray  # (n, L, C) bool
    values: np.ndarray  # (n, L, C) corrected, input dtype
    replaced: np.ndarray  # (n, L, C) bool


def score_and_correct(
    model: DeviceModel, windows: np.ndarray, starts: Sequence[int], rounds: int
) -> GroupResult:
    """(n, L, C) raw windows of one length, sub-windows at `starts` -> their results, in
    chunks of at most RESIDENT_POINTS points (one window at least)."""
    chunk = max(1, RESIDENT_POINTS // (windows.shape[1] * windows.shape[2]))
    parts = [
        _score_chunk(model, windows[i : i + chunk], starts, rounds)
        for i in range(0, len(windows), chunk)
    ]
    if len(parts) == 1:
        return parts[0]
    return GroupResult(
        *(np.concatenate(field) for field in zip(*(vars(p).values() for p in parts), strict=True))
    )


def _score_chunk(
    model: DeviceModel, windows: np.ndarray, starts: Sequence[int], rounds: int
) -> GroupResult:
    raw = torch.from_numpy(np.ascontiguousarray(windows)).to(model.device)
    starts_t = torch.as_tensor(list(starts), device=model.device)
    nll, mean, logvar = _reconstruct(model, raw, starts_t)
    expected = _raw_units(model, mean)
    expected_std = torch.exp(0.5 * logvar.double()) * model.scale
    observed = ~torch.isnan(raw)
    if model.error_score:
        z = (raw.double() - expected) / model.scale
        point = torch.where(observed, z * z, torch.nan)
    else:
        point = torch.where(observed, nll, torch.nan)
    flagged = observed & (torch.nan_to_num(point, nan=-torch.inf) > model.point_threshold)
    replaced = flagged | ~observed
    values = torch.where(replaced, expected.to(raw.dtype), raw)
    _refine(model, values, replaced, starts_t, rounds)
    host = [
        t.cpu().numpy()
        for t in (
            point,
            _observed_mean(point, observed, dim=2),
            _observed_mean(point, observed, dim=1),
            expected,
            expected_std,
            flagged,
            values,
            replaced,
        )
    ]
    return GroupResult(*host)


def _refine(
    model: DeviceModel, values: Tensor, replaced: Tensor, starts: Tensor, rounds: int
) -> None:
    """Donut's imputation rounds (`Detector.correct`), in place on the windows with any
    replaced point: re-encode, put the new reconstruction in the replaced points only."""
    rows = torch.nonzero(replaced.flatten(1).any(dim=1)).flatten()
    if rounds <= 0 or len(rows) == 0:
        return
    current, mask = values[rows], replaced[rows]
    for _ in range(rounds):
        _, mean, _ = _reconstruct(model, current, starts)
        current = torch.where(mask, _raw_units(model, mean).to(current.dtype), current)
    values[rows] = current


def _observed_mean(point: Tensor, observed: Tensor, dim: int) -> Tensor:
    """Mean of `point` over its observed entries along `dim`, float64; NaN where none."""
    counts = observed.sum(dim=dim)
    mean = torch.nansum(point, dim=dim).double() / counts.clamp(min=1).double()
    return torch.where(counts > 0, mean, torch.nan)


def _raw_units(model: DeviceModel, normalised: Tensor) -> Tensor:
    return normalised.double() * model.scale + model.center


def _reconstruct(model: DeviceModel, raw: Tensor, starts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(n, L, C) raw -> point NLL, mean and logvar (n, L, C) float32, normalised units,
    averaged over the sub-windows covering each point (`Detector._overlap_add`)."""
    n, length, channels = raw.shape
    normalised = ((raw.double() - model.center) / model.scale).float()
    cut = normalised[:, starts[:, None] + torch.arange(model.window, device=raw.device)]
    outputs = _network(model, cut.reshape(-1, model.window, channels))
    parts = outputs.reshape(3, n, len(starts), model.window, channels)
    return _overlap_add(model, parts, starts.tolist(), length)


def _network(model: DeviceModel, subs: Tensor) -> Tensor:
    """(N, W, C) normalised sub-windows with NaN -> (3, N, W, C) float32: NLL, mean, logvar.
    Inputs as `vaecore.fit.prepare_batch` makes them: missing as 0, the encoder's clipped."""
    chunks = []
    for i in range(0, len(subs), model.max_batch):
        x = subs[i : i + model.max_batch].transpose(1, 2).contiguous()
        target = torch.where(torch.isnan(x), torch.zeros((), device=x.device), x)
        with model.network_context():
            outs = model.forward(target.clamp(-CLIP, CLIP), target)
        chunks.append(torch.stack([t.float() for t in outs]).transpose(2, 3))
    return torch.cat(chunks, dim=1)


def _overlap_add(
    model: DeviceModel, parts: Tensor, starts: list[int], length: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(3, n, S, W, C) -> three (n, L, C): the host path's loop, in its order and dtype."""
    acc = torch.zeros(
        (3, parts.shape[1], length, parts.shape[4]), dtype=torch.float32, device=parts.device
    )
    count = torch.zeros((length, 1), dtype=torch.float32, device=parts.device)
    slices = overlap_slices(starts, model.window, model.stride == model.window)
    for j, (start, (skip, lo)) in enumerate(zip(starts, slices, strict=True)):
        acc[:, :, lo : start + model.window] += parts[:, :, j, skip:]
        count[lo : start + model.window] += 1
    acc /= count
    return acc[0], acc[1], acc[2]
