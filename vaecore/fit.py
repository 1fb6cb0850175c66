"""The training loop: Adam on the negative M-ELBO, early stopping on validation loss.

With `ema_half_life` > 0 the weights validated and kept are an exponential moving average
of the trained ones (Polyak averaging), which scores slightly better (docs/quality.md).

Inputs are normalised windows `(N, T, C)` with NaN for points that must not count (missing
readings and labelled anomalies). Deterministic on CPU for a fixed seed: the weights are
initialised, the batches shuffled and the training noise drawn from seeded generators.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vaecore.device import to_device
from vaecore.network import ConvVAE, negative_elbo

CLIP = 10.0  # encoder inputs are clipped to +-CLIP: one wild spike cannot blow up the latent


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 50  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # epochs without validation improvement before stopping
    seed: int = 0
    max_steps: int | None = None  # hard cap on optimiser steps (tests, time budgets)
    missing_injection: float = 0.01  # Donut: hide this fraction of observed points per batch
    grad_clip: float = 10.0
    # Polyak averaging: validate and keep an exponential moving average of the weights whose
    # half-life is this many epochs (0 = off, the raw weights are kept).
    ema_half_life: float = 0.0


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float | None
    windows_per_s: float
    seconds: float
    # what early stopping compared: the validation loss; without a validation set, the
    # training loss of the weights that would be kept (the average's, when averaging)
    selection_loss: float


@dataclass
class FitHistory:
    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float | None = None
    steps: int = 0


def prepare_batch(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, T, C) normalised with NaN -> encoder input, target and mask, all (B, C, T).

    The encoder sees missing points as 0 (the channel's centre) and values clipped to +-CLIP;
    the likelihood target keeps the unclipped value; the mask says which points count.
    """
    x = np.ascontiguousarray(np.transpose(windows, (0, 2, 1)), dtype=np.float32)
    mask = ~np.isnan(x)
    target = np.where(mask, x, np.float32(0.0))
    encoder_in = np.clip(target, -CLIP, CLIP)
    return encoder_in, target, mask


def _batch_loss(model: ConvVAE, windows: np.ndarray, device: torch.device) -> torch.Tensor:
    encoder_in, target, mask = prepare_batch(windows)
    out = model(to_device(encoder_in, device))
    mask_t = torch.from_numpy(mask).to(device)
    return negative_elbo(to_device(target, device), mask_t, out, model.cfg.beta).total


def _inject_missing(windows: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    if rate <= 0:
        return windows
    hidden = rng.random(windows.shape) < rate
    return np.where(hidden, np.float32(np.nan), windows)


def _averager(model: ConvVAE, cfg: FitConfig, n_windows: int) -> AveragedModel | None:
    """An EMA of the weights with a half-life of `cfg.ema_half_life` epochs, or None when off."""
    if cfg.ema_half_life <= 0:
        return None
    steps_per_epoch = -(-n_windows // cfg.batch_size)
    decay = 0.5 ** (1.0 / (cfg.ema_half_life * steps_per_epoch))
    ema = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
    # use_buffers: a buffer added to the network later (a norm layer's statistics) is averaged
    # with the weights instead of staying at its initial value in the kept copy.
    return AveragedModel(model, multi_avg_fn=ema, use_buffers=True)


def evaluate_loss(
    model: ConvVAE, windows: np.ndarray, batch_size: int = 256, device: torch.device | None = None
) -> float:
    """Mean negative M-ELBO per window, posterior mean decoded (deterministic)."""
    device = device or next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            total += float(_batch_loss(model, chunk, device)) * len(chunk)
            count += len(chunk)
    return total / max(count, 1)


def _selection_loss(
    val_loss: float | None,
    train_loss: float,
    average: ConvVAE | None,
    train: np.ndarray,
    device: torch.device,
) -> float:
    """The loss early stopping compares, always of the weights it would keep.

    The validation loss when there is one. Without it, the raw weights' running training loss,
    or, when averaging, the averaged weights' (`average`) loss on the training windows (one
    forward pass): the running loss belongs to the raw weights, which are not the ones kept.
    """
    if val_loss is not None:
        return val_loss
    if average is None:
        return train_loss
    return evaluate_loss(average, train, device=device)


def fit(
    model: ConvVAE,
    train: np.ndarray,
    val: np.ndarray | None,
    cfg: FitConfig,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> FitHistory:
    """Train in place; restore the weights of the best validation epoch; return the history."""
    if train.ndim != 3 or len(train) == 0:
        raise ValueError("train must be a non-empty (N, T, C) array of windows")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    averaged = _averager(model, cfg, len(train))
    kept = model if averaged is None else cast(ConvVAE, averaged.module)
    history = FitHistory()
    best_state = copy.deepcopy(kept.state_dict())
    best = float("inf")
    stale = 0
    for epoch in range(1, cfg.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = rng.permutation(len(train))
        losses: list[float] = []
        for i in range(0, len(order), cfg.batch_size):
            batch = _inject_missing(
                train[order[i : i + cfg.batch_size]], cfg.missing_injection, rng
            )
            loss = _batch_loss(model, batch, device)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimiser.step()
            if averaged is not None:
                averaged.update_parameters(model)
            losses.append(float(loss.detach()))
            history.steps += 1
            if cfg.max_steps is not None and history.steps >= cfg.max_steps:
                break
        train_loss = float(np.mean(losses))
        val_loss = evaluate_loss(kept, val, device=device) if val is not None and len(val) else None
        average = None if averaged is None else kept
        score = _selection_loss(val_loss, train_loss, average, train, device)
        seconds = time.perf_counter() - started
        seen = min(len(order), len(losses) * cfg.batch_size)
        stats = EpochStats(epoch, train_loss, val_loss, seen / seconds, seconds, score)
        history.epochs.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if score < best:
            best, stale = score, 0
            best_state = copy.deepcopy(kept.state_dict())
            history.best_epoch, history.best_val_loss = epoch, val_loss
        else:
            stale += 1
        if stale >= cfg.patience or (cfg.max_steps is not None and history.steps >= cfg.max_steps):
            break
    model.load_state_dict(best_state)
    model.eval()
    return history
