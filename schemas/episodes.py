"""Alert episode (contract §3.5): one incident on one series, one alert.

The worker groups the anomalous windows of an incident into an episode that *opens*,
*updates* when it gets worse, and *resolves* (the lifecycle Alertmanager and PagerDuty
model). This module is the wire format only: the pydantic model (for the JSON Schema
export and for consumers) and the encoder the worker uses. The rules that decide when an
episode opens, updates and resolves live in `worker.episodes`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.messages import iso

SCHEMA_VERSION = 1
_EPISODE_NAMESPACE = uuid.UUID("0b5e7f0a-3c3d-4a5e-9b8e-1d2f6c7a9e41")
EpisodeStatus = Literal["open", "update", "resolved"]
Severity = Literal["low", "medium", "high", "critical"]


def make_episode_id(series_id: str, model_name: str, first_window_id: str) -> str:
    """Same series, model and first anomalous window -> same id, across redeliveries."""
    key = f"{series_id}\x1f{model_name}\x1f{first_window_id}"
    return str(uuid.uuid5(_EPISODE_NAMESPACE, key))


class ChannelContribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    score: float = Field(description="mean channel score over the episode's anomalous windows")


class EpisodeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str


class AlertEpisode(BaseModel):
    """Output, topic `anomaly-episodes`, key = series_id: open, update(s), resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1]
    episode_id: str = Field(
        description="deterministic from series_id, model name and the first anomalous window_id"
    )
    series_id: str
    status: EpisodeStatus
    seq: int = Field(ge=0, description="0 for open, +1 per later message of the episode")
    opened_at: AwareDatetime = Field(description="data time: start of the first anomalous window")
    last_anomalous_at: AwareDatetime = Field(
        description="data time: end of the latest anomalous window"
    )
    resolved_at: AwareDatetime | None = Field(
        description="data time the episode was resolved at; null until resolved"
    )
    severity: Severity = Field(description="severity of the latest anomalous window")
    peak_severity: Severity
    peak_score: float
    anomalous_windows: int = Field(ge=1, description="anomalous windows so far")
    top_channels: list[ChannelContribution] = Field(
        description="channels ranked by their mean score over the anomalous windows"
    )
    first_event_id: str
    last_event_id: str
    models: list[EpisodeModel] = Field(description="every model version that scored it")
    emitted_at: AwareDatetime = Field(description="wall clock when this message was built")


def iso_ms(epoch_ms: int) -> str:
    """Data time (epoch milliseconds) as the wire's ISO 8601 UTC text."""
    return iso(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def encode_episode(fields: dict[str, Any], emitted_at: datetime) -> bytes:
    """An episode message: `fields` holds every field but schema_version and emitted_at."""
    doc = {"schema_version": SCHEMA_VERSION, **fields, "emitted_at": iso(emitted_at)}
    return orjson.dumps(doc)
