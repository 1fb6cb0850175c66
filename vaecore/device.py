"""Device selection and host-to-device copies: the only place that knows about CUDA.

On CUDA a batch is copied from pinned (page-locked) host memory with `non_blocking=True`,
so the copy overlaps with work already queued on the GPU, and the forward pass runs under
autocast (bf16 where supported, else fp16). On CPU none of that applies and these helpers
reduce to plain calls.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import numpy as np
import torch

from vwbase.errors import ModelError


def select_device(requested: str = "auto") -> torch.device:
    """'auto' = the first CUDA device when present, else CPU; 'cuda[:n]' must exist."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ModelError(f"unknown device {requested!r}; use auto, cpu or cuda[:n]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {requested!r} requested but no CUDA device is available")
    if device.type not in ("cpu", "cuda"):
        raise ModelError(f"unsupported device {requested!r}; use auto, cpu or cuda[:n]")
    return device


def to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """One host array -> one tensor on `device` (pinned + non-blocking copy on CUDA)."""
    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


PRECISIONS = ("auto", "fp32", "bf16")


def autocast_for(device: torch.device, precision: str = "auto") -> AbstractContextManager[object]:
    """The forward pass's numeric precision.

    "auto" (what the worker runs): mixed precision on CUDA (bf16 where supported, else
    fp16), plain fp32 on CPU, so stream and backfill on CPU stay identical. "fp32" and "bf16"
    force one or the other on either device; the GPU benchmark compares the two.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
