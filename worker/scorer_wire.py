"""What the worker and its scoring process send each other: JSON headers and raw arrays.

No pickle (the product loads nothing with it, `tests/unit/test_security.py`): a message is
one JSON header naming its arrays' dtypes and shapes, then each array's bytes, so every
value arrives bit for bit. Three kinds:

  model    a `Detector`: its fields in the header, the scaler, the point thresholds and the
           weights (safetensors, as in the artifact) as arrays
  score    a batch's windows, stacked per length
  ok       a batch's results, compact (`results_arrays`); `error` carries one line instead
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from modelstore.artifact import architecture_of, config_of
from schemas.manifest import Architecture
from vaecore import ChannelScaler, ConvVAE, Correction, Detector, PointScores, Thresholds
from vaecore.detector import by_length
from vaecore.smoothing import Scale

Header = dict[str, Any]
Stateless = tuple[list[PointScores], list[Correction]]  # a batch's history-free results


def send(conn: Connection, header: Header, arrays: list[np.ndarray]) -> None:
    specs = [[a.dtype.str, list(a.shape)] for a in arrays]
    conn.send_bytes(json.dumps({**header, "arrays": specs}).encode())
    for a in arrays:
        # flat bytes, no copy for contiguous arrays (send_bytes counts a 2-d view's rows)
        conn.send_bytes(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)


def receive(conn: Connection) -> tuple[Header, list[np.ndarray]]:
    """A header and its arrays (read-only views on the received bytes)."""
    header: Header = json.loads(conn.recv_bytes())
    arrays = []
    for dtype, shape in header.pop("arrays"):
        kind = np.dtype(dtype)
        if kind.hasobject:
            raise ValueError(f"refusing an object array ({dtype})")
        arrays.append(np.frombuffer(conn.recv_bytes(), dtype=kind).reshape(shape))
    return header, arrays


# --- model ---------------------------------------------------------------------------------
def detector_message(detector: Detector) -> tuple[Header, list[np.ndarray]]:
    th = detector.thresholds
    fields = {
        "architecture": architecture_of(detector.model.cfg).model_dump(mode="json"),
        "channels": list(detector.channels),
        "thresholds": None if th is None else _threshold_fields(th),
        **{name: getattr(detector, name) for name in _PLAIN},
        "scales": [asdict(s) for s in detector.scales],
        "device": str(detector.device),
    }
    weights = save_safetensors(
        {k: v.detach().cpu() for k, v in detector.model.state_dict().items()}
    )
    arrays = [detector.scaler.center, detector.scaler.scale]
    arrays.append(th.point if th is not None else np.zeros(0))
    arrays.append(np.frombuffer(weights, dtype=np.uint8))
    return {"kind": "model", "detector": fields}, arrays


def _threshold_fields(th: Thresholds) -> dict[str, Any]:
    """Every field of the thresholds but `point` (an array, sent as one)."""
    plain = {f.name: getattr(th, f.name) for f in dataclass_fields(th) if f.name != "point"}
    return {**plain, "window": float(th.window)}


# the Detector's fields that travel as they are (JSON numbers, strings, null)
_PLAIN: tuple[str, ...] = ("n_samples", "stride", "score_kind", "smoothing", "period")
_PLAIN += ("sample_seed", "max_batch", "precision", "name", "version")


def detector_from(header: Header, arrays: list[np.ndarray]) -> Detector:
    fields = header["detector"]
    center, scale, point, weights = arrays
    model = ConvVAE(config_of(Architecture.model_validate(fields["architecture"])))
    model.load_state_dict(load_safetensors(weights.tobytes()))
    th = fields["thresholds"]
    return Detector(
        model=model,
        scaler=ChannelScaler(center=center.copy(), scale=scale.copy()),
        channels=tuple(fields["channels"]),
        thresholds=None if th is None else Thresholds(point=point.copy(), **th),
        device=torch.device(fields["device"]),
        scales=tuple(Scale(**s) for s in fields["scales"]),
        **{name: fields[name] for name in _PLAIN},
    )


# --- windows ---------------------------------------------------------------------------------
def windows_message(seq: int, windows: list[np.ndarray]) -> tuple[Header, list[np.ndarray]]:
    groups = list(by_length(windows).values())
    stacks = [np.stack([windows[i] for i in index]) for index in groups]
    return {"kind": "score", "seq": seq, "groups": groups}, stacks


def windows_from(header: Header, arrays: list[np.ndarray]) -> list[np.ndarray]:
    out: list[np.ndarray] = [np.empty(0)] * sum(len(index) for index in header["groups"])
    for index, stack in zip(header["groups"], arrays, strict=True):
        for j, i in enumerate(index):
            out[i] = stack[j]
    return out


# --- results ---------------------------------------------------------------------------------
# Compact: what the worker reads of them. Per window length, dense per window: raw step
# scores, channel scores, flagged and replaced masks; the rest only where it is used: point
# scores and reconstruction at flagged points (the event's points), corrected values at
# replaced points (the worker has the input, and `correct` changes nothing else). 128 x 38:
# ~11 KB a window instead of ~150 KB, which the worker's GIL-bound pipe reads did not keep up
# with. 7 arrays per length group.
def results_message(
    seq: int, points: list[PointScores], corrections: list[Correction]
) -> tuple[Header, list[np.ndarray]]:
    groups = list(by_length([p.raw_step for p in points]).values())
    arrays: list[np.ndarray] = []
    for index in groups:
        ps, cs = [points[i] for i in index], [corrections[i] for i in index]
        arrays += [np.stack([p.raw_step for p in ps]), np.stack([p.channel for p in ps])]
        arrays += [np.stack([p.flagged for p in ps]), np.stack([c.replaced for c in cs])]
        arrays.append(np.concatenate([p.point[p.flagged] for p in ps]))
        arrays.append(np.concatenate([p.expected[p.flagged] for p in ps]))
        arrays.append(np.concatenate([c.values[c.replaced] for c in cs]))
    return {"kind": "ok", "seq": seq, "groups": groups}, arrays


def results_from(header: Header, arrays: list[np.ndarray], windows: list[np.ndarray]) -> Stateless:
    """Full `PointScores` and `Correction`s again; `point` and `expected` hold values only
    at flagged points (NaN elsewhere) and `expected_std` none: the worker reads no more."""
    points: list[PointScores] = [None] * len(windows)  # type: ignore[list-item]
    corrections: list[Correction] = [None] * len(windows)  # type: ignore[list-item]
    for g, index in enumerate(header["groups"]):
        raw_step, channel, flagged, replaced, point_at, expected_at, corrected_at = arrays[
            7 * g : 7 * g + 7
        ]
        flagged_at = np.cumsum(flagged.reshape(len(index), -1).sum(axis=1))[:-1]
        replaced_at = np.cumsum(replaced.reshape(len(index), -1).sum(axis=1))[:-1]
        point_vals, expected_vals = (
            np.split(point_at, flagged_at),
            np.split(expected_at, flagged_at),
        )
        corrected_vals = np.split(corrected_at, replaced_at)
        nan_point = _nan(flagged.shape[1:], point_at.dtype)
        nan_expected = _nan(flagged.shape[1:], expected_at.dtype)
        for j, i in enumerate(index):
            point = _at(flagged[j], point_vals[j], nan_point)
            expected = _at(flagged[j], expected_vals[j], nan_expected)
            points[i] = PointScores(
                point, raw_step[j], channel[j], expected, nan_expected, flagged[j]
            )
            values = windows[i].copy()
            values[replaced[j]] = corrected_vals[j]
            corrections[i] = Correction(values, replaced[j])
    return points, corrections


def _nan(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """A read-only all-NaN array: shared by the windows of a group where nothing is known."""
    out = np.full(shape, np.nan, dtype=dtype)
    out.flags.writeable = False
    return out


def _at(mask: np.ndarray, values: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """`values` at `mask`, NaN elsewhere (`nan` itself when there are none)."""
    if not len(values):
        return nan
    out = np.full(mask.shape, np.nan, dtype=values.dtype)
    out[mask] = values
    return out
