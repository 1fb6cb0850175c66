"""Wire formats of contract §3: the input window, the anomaly event, the corrected window.

Two layers, one source of truth for the shapes:
- pydantic models (`SensorWindow`, `AnomalyEvent`, `CorrectedWindow`) document the formats,
  export their JSON Schemas for downstream teams and validate encoder output in tests;
- the hot path (`decode_window`, `encode_*`) uses orjson and numpy directly, because the
  worker decodes and encodes every window and that dominates its per-message cost. It
  applies the same rules and raises `InvalidMessage` with a short stable `error_class` and a
  one-line `reason`, which go into the dead-letter headers as they are.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_STEPS = 65536
MAX_CHANNELS = 1024
MAX_ID_CHARS = 256
_EVENT_NAMESPACE = uuid.UUID("6f0c3c1e-4f57-4d8a-9a55-2f1a3b7e5d10")
_NUMBER_TYPES = frozenset({float, int, type(None)})

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
Reading = float | None


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorWindow(_Wire):
    """Input, topic `sensor-windows`. `values` is time-major, one column per channel."""

    schema_version: Literal[1]
    window_id: Id
    series_id: Id
    start: datetime = Field(description="ISO-8601 time of the first row, with a timezone")
    interval_ms: int = Field(gt=0, description="time between rows")
    channels: list[Id] = Field(min_length=1, max_length=MAX_CHANNELS)
    values: list[list[Reading]] = Field(
        min_length=1, max_length=MAX_STEPS, description="rows x channels; null = missing"
    )


class ModelRef(_Wire):
    name: str
    version: str


class SourceRef(_Wire):
    topic: str
    partition: int
    offset: int


class AnomalousPoint(_Wire):
    index: int = Field(ge=0, description="row within the window")
    timestamp: datetime
    channel: str
    value: float
    expected: float = Field(description="the model's reconstruction")
    score: float = Field(description="negative log-likelihood of the point")


class AnomalyEvent(_Wire):
    """Output, topic `anomaly-events`, one per anomalous window."""

    schema_version: Literal[1]
    event_id: str = Field(description="deterministic from window_id and model version")
    window_id: Id
    series_id: Id
    start: datetime
    end: datetime
    model: ModelRef
    score: float
    threshold: float
    severity: Literal["low", "medium", "high", "critical"]
    channel_scores: dict[str, float | None]
    anomalous_points: list[AnomalousPoint]
    detected_at: datetime
    source: SourceRef


class CorrectedWindow(_Wire):
    """Output, topic `corrected-windows`, one per valid input window."""

    schema_version: Literal[1]
    window_id: Id
    series_id: Id
    start: datetime
    interval_ms: int
    channels: list[str]
    values: list[list[Reading]]
    corrected: list[tuple[int, int]] = Field(description="[row, channel] pairs replaced")
    is_anomaly: bool
    score: float | None
    model: ModelRef
    source: SourceRef


# --- hot path: decode -------------------------------------------------------------------
class InvalidMessage(Exception):  # noqa: N818  (a poison message, not a program error)
    """A message that cannot be processed: it goes to the dead-letter topic as it is."""

    def __init__(self, error_class: str, reason: str) -> None:
        self.error_class = error_class
        self.reason = " ".join(reason.split())[:300]
        super().__init__(f"{error_class}: {self.reason}")


@dataclass(frozen=True, slots=True)
class DecodedWindow:
    window_id: str
    series_id: str
    start: datetime
    interval_ms: int
    channels: tuple[str, ...]
    values: np.ndarray  # (T, C) float64, NaN = missing

    @property
    def end(self) -> datetime:
        return self.start + timedelta(milliseconds=self.interval_ms * (len(self.values) - 1))


def _require(doc: dict[str, Any], key: str) -> Any:
    if key not in doc:
        raise InvalidMessage("missing_field", f"required field `{key}` is missing")
    return doc[key]


def _id(doc: dict[str, Any], key: str) -> str:
    value = _require(doc, key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise InvalidMessage("wrong_type", f"`{key}` must be a string of 1..{MAX_ID_CHARS} chars")
    return value


def parse_start(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidMessage("bad_timestamp", "`start` must be an ISO-8601 string")
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMessage("bad_timestamp", f"`start` {value[:40]!r} is not ISO-8601") from None
    if start.tzinfo is None:
        raise InvalidMessage("bad_timestamp", "`start` needs a timezone (e.g. a trailing Z)")
    return start.astimezone(UTC)


def _load_json(raw: bytes, max_bytes: int) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise InvalidMessage("too_large", f"message of {len(raw)} bytes exceeds {max_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in raw or b"Infinity" in raw or "infinity" in str(exc):
            raise InvalidMessage(
                "non_finite", "NaN/Infinity is not allowed; use null for a missing reading"
            ) from None
        raise InvalidMessage("not_json", f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidMessage("not_object", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _channels(doc: dict[str, Any]) -> tuple[str, ...]:
    channels = _require(doc, "channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        raise InvalidMessage("wrong_type", "`channels` must be a list of non-empty strings")
    if not 0 < len(channels) <= MAX_CHANNELS:
        raise InvalidMessage("wrong_shape", f"`channels` must hold 1..{MAX_CHANNELS} names")
    if len(set(channels)) != len(channels):
        raise InvalidMessage("duplicate_channels", "`channels` names must be unique")
    return tuple(channels)


def _values(rows: object, n_channels: int) -> np.ndarray:
    if not isinstance(rows, list):
        raise InvalidMessage("wrong_type", "`values` must be a list of rows")
    if not rows:
        raise InvalidMessage("empty", "`values` has no rows")
    if len(rows) > MAX_STEPS:
        raise InvalidMessage("too_large", f"`values` has {len(rows)} rows, limit {MAX_STEPS}")
    if not all(type(r) is list for r in rows):
        raise InvalidMessage("wrong_shape", "every row of `values` must be a list")
    lengths = set(map(len, rows))
    if lengths != {n_channels}:
        bad = next(i for i, r in enumerate(rows) if len(r) != n_channels)
        raise InvalidMessage(
            "wrong_shape",
            f"values[{bad}] has {len(rows[bad])} readings, expected {n_channels} (one per channel)",
        )
    types = set(map(type, itertools.chain.from_iterable(rows)))
    if not types <= _NUMBER_TYPES:
        bad_type = next(t for t in types if t not in _NUMBER_TYPES)
        raise InvalidMessage(
            "wrong_type", f"`values` must hold numbers or null, found {bad_type.__name__}"
        )
    return np.array(rows, dtype=np.float64)


def decode_window(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedWindow:
    """Bytes -> a validated window. The size is checked before any parsing."""
    doc = _load_json(raw, max_bytes)
    version = _require(doc, "schema_version")
    if version != SCHEMA_VERSION or type(version) is not int:
        raise InvalidMessage("wrong_version", f"schema_version {version!r} is not supported (1)")
    window_id = _id(doc, "window_id")
    series_id = _id(doc, "series_id")
    start = parse_start(_require(doc, "start"))
    interval = _require(doc, "interval_ms")
    if type(interval) is not int or interval <= 0:
        raise InvalidMessage("wrong_type", "`interval_ms` must be a positive integer")
    channels = _channels(doc)
    values = _values(_require(doc, "values"), len(channels))
    if np.isinf(values).any():
        row, col = np.argwhere(np.isinf(values))[0]
        raise InvalidMessage("non_finite", f"values[{row}][{col}] overflows to infinity")
    unknown = doc.keys() - _INPUT_FIELDS
    if unknown:
        raise InvalidMessage("unknown_field", f"unexpected field `{sorted(unknown)[0]}`")
    return DecodedWindow(window_id, series_id, start, interval, channels, values)


_INPUT_FIELDS = frozenset(SensorWindow.model_fields)


def _check_channels(window: DecodedWindow, model_channels: Sequence[str]) -> dict[str, int]:
    index = {c: i for i, c in enumerate(window.channels)}
    missing = [c for c in model_channels if c not in index]
    if missing:
        raise InvalidMessage(
            "channels_mismatch",
            f"window lacks {len(missing)} of the model's channels, e.g. {missing[0]!r}",
        )
    return index


def align_to_model(
    window: DecodedWindow, model_channels: Sequence[str], min_length: int
) -> np.ndarray:
    """The model's columns, in the model's order: (T, C_model). Extra input channels are ignored."""
    if len(window.values) < min_length:
        _check_channels(window, model_channels)
        raise InvalidMessage(
            "too_short", f"window has {len(window.values)} rows; the model needs {min_length}"
        )
    if tuple(model_channels) == window.channels:
        return window.values
    index = _check_channels(window, model_channels)
    columns: np.ndarray = window.values[:, [index[c] for c in model_channels]]
    return columns


# --- hot path: encode -------------------------------------------------------------------
def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event_id(window_id: str, model_name: str, model_version: str) -> str:
    """Same window, same model version -> same id, so a redelivery is recognisable."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{window_id}\x1f{model_name}\x1f{model_version}"))


def severity(score: float, threshold: float, spread: float) -> str:
    """How far above the threshold, in units of the validation scores' robust spread."""
    excess = (score - threshold) / spread if spread > 0 else float("inf")
    if excess < 1:
        return "low"
    if excess < 3:
        return "medium"
    if excess < 6:
        return "high"
    return "critical"


def merge_corrected(
    window: DecodedWindow,
    model_channels: Sequence[str],
    corrected_model_values: np.ndarray,
    replaced: np.ndarray,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Put the model's corrections back into the input's layout; other values untouched."""
    if tuple(model_channels) == window.channels:
        columns = list(range(len(window.channels)))
        values = np.array(corrected_model_values, dtype=np.float64, copy=True)
    else:
        index = {c: i for i, c in enumerate(window.channels)}
        columns = [index[c] for c in model_channels]
        values = window.values.copy()
        for j, col in enumerate(columns):
            rows = replaced[:, j]
            values[rows, col] = corrected_model_values[rows, j]
    rows_idx, cols_idx = np.nonzero(replaced)
    pairs = [(int(r), columns[int(c)]) for r, c in zip(rows_idx, cols_idx, strict=True)]
    return values, pairs


_DUMP = orjson.OPT_SERIALIZE_NUMPY


def encode_window(
    window_id: str,
    series_id: str,
    start: datetime,
    interval_ms: int,
    channels: Sequence[str],
    values: np.ndarray,
) -> bytes:
    """An input window (§3.1); NaN becomes null."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "window_id": window_id,
        "series_id": series_id,
        "start": iso(start),
        "interval_ms": interval_ms,
        "channels": list(channels),
        "values": np.ascontiguousarray(values, dtype=np.float64),
    }
    return orjson.dumps(doc, option=_DUMP)


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def encode_corrected(
    window: DecodedWindow,
    values_full: np.ndarray,
    corrected_pairs: list[tuple[int, int]],
    *,
    is_anomaly: bool,
    score: float | None,
    model: ModelRef,
    source: SourceRef,
) -> bytes:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "window_id": window.window_id,
        "series_id": window.series_id,
        "start": iso(window.start),
        "interval_ms": window.interval_ms,
        "channels": list(window.channels),
        "values": np.ascontiguousarray(values_full, dtype=np.float64),
        "corrected": corrected_pairs,
        "is_anomaly": is_anomaly,
        "score": _finite_or_none(score),
        "model": {"name": model.name, "version": model.version},
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
    }
    return orjson.dumps(doc, option=_DUMP)


def encode_event(
    window: DecodedWindow,
    *,
    model: ModelRef,
    source: SourceRef,
    score: float,
    threshold: float,
    severity: str,
    channel_scores: dict[str, float | None],
    anomalous_points: list[dict[str, Any]],
    detected_at: datetime,
) -> bytes:
    """An anomaly event (§3.2); points are dicts shaped like `AnomalousPoint`."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "event_id": make_event_id(window.window_id, model.name, model.version),
        "window_id": window.window_id,
        "series_id": window.series_id,
        "start": iso(window.start),
        "end": iso(window.end),
        "model": {"name": model.name, "version": model.version},
        "score": float(score),
        "threshold": float(threshold),
        "severity": severity,
        "channel_scores": {k: _finite_or_none(v) for k, v in channel_scores.items()},
        "anomalous_points": anomalous_points,
        "detected_at": iso(detected_at),
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
    }
    return orjson.dumps(doc, option=_DUMP)


def point_timestamp(window: DecodedWindow, index: int) -> str:
    return iso(window.start + timedelta(milliseconds=window.interval_ms * index))


DLQ_HEADER_CLASS = "vaewatch.error.class"
DLQ_HEADER_REASON = "vaewatch.error.reason"


def dead_letter_headers(
    error_class: str, reason: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (DLQ_HEADER_CLASS, error_class.encode()),
        (DLQ_HEADER_REASON, reason.encode()),
        ("vaewatch.source.topic", topic.encode()),
        ("vaewatch.source.partition", str(partition).encode()),
        ("vaewatch.source.offset", str(offset).encode()),
    ]
