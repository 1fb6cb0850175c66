"""The wire formats of contract §3 as pydantic models: the documentation of the formats.

They export the JSON Schemas for downstream teams (`vaewatch schemas export`) and validate
encoder output in tests. The worker's hot path does not go through them: `schemas.messages`
decodes and encodes with orjson and numpy, applying the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_STEPS = 65536
MAX_CHANNELS = 1024
MAX_ID_CHARS = 256

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
Reading = float | None
Row = Annotated[list[Reading], Field(min_length=1, max_length=MAX_CHANNELS)]


class _Wire(BaseModel):
    """Strict like the hot path: no string->number or bool->number coercion, no NaN/Inf."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _check_grid(channels: Sequence[str], values: Sequence[Sequence[Reading]]) -> None:
    if len(set(channels)) != len(channels):
        raise ValueError("channel names must be unique")
    bad = next((i for i, row in enumerate(values) if len(row) != len(channels)), None)
    if bad is not None:
        raise ValueError(
            f"values[{bad}] has {len(values[bad])} readings for {len(channels)} channels"
        )


class SensorWindow(_Wire):
    """Input, topic `sensor-windows`. `values` is time-major, one column per channel.

    Tolerant reader: unknown top-level fields are accepted, ignored for scoring and passed
    through unchanged on the corrected window; `schema_version` must still be 1.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)

    schema_version: Literal[1]
    window_id: Id
    series_id: Id
    start: AwareDatetime = Field(description="ISO-8601 time of the first row, with a timezone")
    interval_ms: int = Field(gt=0, description="time between rows")
    channels: list[Id] = Field(min_length=1, max_length=MAX_CHANNELS)
    values: list[Row] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        description="rows x channels, one reading per channel in every row; null = missing",
    )

    @model_validator(mode="after")
    def _grid_matches_channels(self) -> SensorWindow:
        _check_grid(self.channels, self.values)
        return self


class _Ref(BaseModel):
    """Built by the worker for every output, so no stricter than the values it is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Ref):
    name: str
    version: str


class SourceRef(_Ref):
    topic: str
    partition: int
    offset: int


class AnomalousPoint(_Wire):
    index: int = Field(ge=0, description="row within the window")
    timestamp: AwareDatetime = Field(description="start + index * interval_ms")
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
    start: AwareDatetime
    end: AwareDatetime = Field(description="time of the last row")
    model: ModelRef
    score: float
    threshold: float
    severity: Literal["low", "medium", "high", "critical"]
    channel_scores: dict[str, float | None]
    anomalous_points: list[AnomalousPoint]
    detected_at: AwareDatetime
    source: SourceRef


class CorrectedWindow(_Wire):
    """Output, topic `corrected-windows`, one per valid input window.

    Unknown top-level fields of the input window are carried over unchanged, except one
    named like a field below that is not an input field (`corrected`, `is_anomaly`,
    `score`, `model`, `source`): the worker's own value is written there.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)

    schema_version: Literal[1]
    window_id: Id
    series_id: Id
    start: AwareDatetime
    interval_ms: int = Field(gt=0)
    channels: list[Id] = Field(min_length=1, max_length=MAX_CHANNELS)
    values: list[Row] = Field(min_length=1, max_length=MAX_STEPS)
    corrected: list[tuple[int, int]] = Field(description="[row, channel] pairs replaced")
    is_anomaly: bool
    score: float | None = Field(description="window score; null when it is not finite")
    model: ModelRef
    source: SourceRef

    @model_validator(mode="after")
    def _grid_matches_channels(self) -> CorrectedWindow:
        _check_grid(self.channels, self.values)
        return self
