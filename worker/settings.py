"""Worker configuration: one typed object from `VAEWATCH_*` environment variables and flags.

Every field's `description` doubles as `vaewatch worker --help` text, so the env var list
there never drifts from the code. The connection and security fields (and their secrets)
come from `kafkaio.settings.KafkaSettings`, which this extends. A bad value is reported on
one line naming the env var (and the flag when there is one), never as a pydantic traceback.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from kafkaio.settings import ENV_PREFIX, KafkaSettings, env_var, one_line
from vwbase.argtypes import duration_seconds
from vwbase.errors import UserInputError
from worker.episodes import EpisodeRules

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's rule for topic names
_RULES = EpisodeRules()  # the episode rules' defaults live with the rules
MAX_AUTO_PROCESSES = 4  # measured on 2 CPUs; each process holds torch (~0.3-0.4 GB)
# `auto` runs several processes only for models this narrow: one process's Python thread
# limits a 1-channel model (auto x1.13-1.32 on 2 CPUs), not an 8- or 38-channel one
# (x0.83-0.99), with 2 and 4 channels in between (x1.07, x1.00). docs/benchmarks.md.
AUTO_MAX_CHANNELS = 1


class WorkerSettings(KafkaSettings):
    """Contract §5: the worker's whole configuration. Frozen: read once at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- where the data flows (the brokers: KafkaSettings) ---------------------------------
    input_topic: str = Field("sensor-windows", min_length=1, description="topic of sensor windows")
    events_topic: str = Field("anomaly-events", min_length=1, description="anomaly events topic")
    corrected_topic: str = Field(
        "corrected-windows", min_length=1, description="corrected windows topic"
    )
    dlq_topic: str = Field("sensor-windows.dlq", min_length=1, description="dead-letter topic")
    episodes_topic: str = Field(
        "anomaly-episodes", min_length=1, description="alert episodes topic (open/update/resolved)"
    )
    state_topic: str = Field(
        "",
        description="per-series state changelog (compacted; key = series, partition = the "
        "input's); default GROUP_ID-state (vaewatch-worker-state): one per consumer group",
    )
    group_id: str = Field("vaewatch-worker", min_length=1, description="consumer group id")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new group starts: earliest|latest"
    )
    create_topics: bool = Field(True, description="create missing topics at start")
    topic_partitions: int = Field(3, ge=1, description="partitions of topics the worker creates")

    # --- the model ------------------------------------------------------------------------
    registry: Path = Field(Path("./models"), description="model registry directory")
    model: str = Field(
        "default", min_length=1, description="model name; the worker follows its production alias"
    )
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N (auto = CUDA when available)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="the network's arithmetic: auto = bf16 autocast on CUDA, fp32 on CPU; "
        "bf16 = bf16 autocast on either (see docs/benchmarks.md)",
    )
    scorer: Literal["auto", "thread", "process"] = Field(
        "auto",
        description="where the network runs: thread = a scoring thread of the worker process; "
        "process = a child process (another core: the GIL is not shared); auto = process on "
        "a CPU device with >= 2 usable CPUs, else thread",
    )
    processes: int | Literal["auto"] = Field(
        "auto",
        description="worker processes in this container, each a member of the consumer group "
        "(partitions >= processes, or the rest stand by); auto = one per usable CPU (at most "
        f"{MAX_AUTO_PROCESSES}) for a single-channel model on a CPU device, else 1 (wider "
        "models, CUDA, no model published yet; docs/benchmarks.md)",
    )
    reload_interval_s: float = Field(5.0, gt=0, description="seconds between alias checks")
    wait_log_interval_s: float = Field(
        15.0, gt=0, description="seconds between `waiting_for` log lines (no model, no broker)"
    )
    torch_threads: int = Field(
        0,
        ge=0,
        description="torch CPU threads; 0 = auto: OMP_NUM_THREADS if set, else one less than "
        "the CPUs this process may use (affinity mask and cgroup CPU quota; under several "
        "PROCESSES, its share of them), at least 1",
    )

    # --- alert episodes and per-series state (rules: worker.episodes, docs/episodes.md) -----
    episode_open_min_windows: int = Field(
        _RULES.open_min_windows, ge=1, description="anomalous windows that open an episode..."
    )
    episode_open_within_windows: int = Field(
        _RULES.open_within_windows, ge=1, description="...within this many latest windows"
    )
    episode_resolve_after_windows: int = Field(
        _RULES.resolve_after_windows, ge=1, description="consecutive normal windows that resolve"
    )
    episode_resolve_after_gap_s: float = Field(
        _RULES.resolve_after_gap_s,
        gt=0,
        description="a data-time gap (s) longer than this resolves",
    )
    episode_update_min_interval_s: float = Field(
        _RULES.update_min_interval_s,
        ge=0,
        description="data-time seconds between updates unless the severity rises",
    )
    state_ttl: float = Field(
        7 * 86400.0,
        ge=0,
        description="delete the state of a series idle this long in data time (seconds or "
        "30m/12h/7d/2w; 0 = never)",
    )

    # --- batching, limits, timeouts -------------------------------------------------------
    max_batch: int = Field(
        4096,
        ge=1,
        le=65536,
        description="max windows per micro-batch: batches start at 256 (or this, if smaller) "
        "and double up to it while records are queued",
    )
    max_batch_wait_ms: int = Field(100, ge=0, description="max wait (ms) to fill a micro-batch")
    flush_timeout_s: float = Field(30.0, gt=0, description="max wait for output acks per batch")
    shutdown_timeout_s: float = Field(30.0, gt=0, description="max drain time on SIGTERM")
    session_timeout_ms: int = Field(10000, ge=1000, description="consumer group session timeout")
    heartbeat_interval_ms: int = Field(2000, ge=100, description="consumer heartbeat interval")
    max_poll_interval_ms: int = Field(300000, ge=1000, description="max time between two polls")

    # --- observability --------------------------------------------------------------------
    metrics_port: int = Field(
        9400, ge=0, le=65535, description="/metrics, /healthz, /readyz port (0 = disabled)"
    )

    @field_validator("device")
    @classmethod
    def _device_is_known(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"must be auto, cpu, cuda or cuda:N, not {value!r}")
        return value

    @field_validator(
        "input_topic",
        "events_topic",
        "corrected_topic",
        "dlq_topic",
        "episodes_topic",
        "state_topic",
    )
    @classmethod
    def _topic_is_legal(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "state_topic" and value == "":
            return value  # derived from the group id
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError(
                f"{value[:60]!r} is not a Kafka topic name "
                "(1-249 of letters, digits, '.', '_', '-')"
            )
        return value

    @field_validator("processes", mode="before")
    @classmethod
    def _processes_auto_or_positive(cls, value: object) -> object:
        text = str(value).strip()
        if text == "auto":
            return text
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"must be auto or an integer >= 1, not {text[:20]!r}")
        return int(text)

    @field_validator("model")
    @classmethod
    def _model_is_a_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or "@" in value or value.startswith("."):
            raise ValueError(f"{value[:60]!r} is not a model name (no '/', '@' or leading '.')")
        return value

    @field_validator("state_ttl", mode="before")
    @classmethod
    def _ttl_as_duration(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and value.strip()[-1].isalpha():
            try:
                return duration_seconds(value)
            except argparse.ArgumentTypeError as exc:
                raise ValueError(str(exc)) from None
        return value

    def episode_rules(self) -> EpisodeRules:
        return EpisodeRules(
            open_min_windows=self.episode_open_min_windows,
            open_within_windows=self.episode_open_within_windows,
            resolve_after_windows=self.episode_resolve_after_windows,
            resolve_after_gap_s=self.episode_resolve_after_gap_s,
            update_min_interval_s=self.episode_update_min_interval_s,
        )

    @model_validator(mode="after")
    def _state_topic_of_the_group(self) -> WorkerSettings:
        if not self.state_topic:  # frozen model: set once, here, before anyone reads it
            object.__setattr__(self, "state_topic", f"{self.group_id}-state")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.episode_open_min_windows > self.episode_open_within_windows:
            raise ValueError(
                f"{env_var('episode_open_min_windows')} must not exceed "
                f"{env_var('episode_open_within_windows')} "
                f"({self.episode_open_min_windows} > {self.episode_open_within_windows})"
            )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"{env_var('heartbeat_interval_ms')} must be below {env_var('session_timeout_ms')} "
                f"({self.heartbeat_interval_ms} >= {self.session_timeout_ms})"
            )
        return self


def settings_from_cli(
    args_overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> WorkerSettings:
    """Environment first, then flags: an override that is not None wins over its env var.

    `flags` maps field names to the flag that set them, so an error can name both.
    A pydantic `ValidationError` becomes a one-line `UserInputError`.
    """
    given = {k: v for k, v in (args_overrides or {}).items() if v is not None}
    try:
        return WorkerSettings(**given)
    except ValidationError as exc:
        raise UserInputError(one_line(exc, flags or {})) from None
