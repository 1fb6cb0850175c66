"""Worker configuration: one typed object from `VAEWATCH_*` environment variables and flags.

Secrets are `SecretStr`: they print as `**********` in logs, reprs and `--help`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vaewatch.errors import UserInputError


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAEWATCH_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field("localhost:9092", description="host:port[,host:port]")
    input_topic: str = Field("sensor-windows", description="topic of sensor windows")
    events_topic: str = Field("anomaly-events", description="topic of anomaly events")
    corrected_topic: str = Field("corrected-windows", description="topic of corrected windows")
    dlq_topic: str = Field("sensor-windows.dlq", description="dead-letter topic")
    group_id: str = Field("vaewatch-worker", description="consumer group")
    registry: Path = Field(Path("./models"), description="model registry directory")
    model: str = Field("default", description="model name; the worker follows its production alias")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto|cpu|cuda[:n]"
    )
    max_batch: int = Field(256, ge=1, le=65536, description="windows per micro-batch")
    max_batch_wait_ms: int = Field(100, ge=0, description="max wait to fill a micro-batch")
    metrics_port: int = Field(
        9400, ge=0, le=65535, description="Prometheus + health port (0 = off)"
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field("earliest", description="new groups")
    create_topics: bool = Field(True, description="create missing topics at start")
    topic_partitions: int = Field(3, ge=1, description="partitions of topics it creates")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    session_timeout_ms: int = Field(10000, ge=1000, description="consumer group session timeout")
    heartbeat_interval_ms: int = Field(2000, ge=100, description="consumer heartbeat interval")
    max_poll_interval_ms: int = Field(300000, ge=1000, description="max time between polls")
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger inputs: DLQ")
    reload_interval_s: float = Field(5.0, gt=0, description="how often the alias is checked")
    flush_timeout_s: float = Field(30.0, gt=0, description="max wait for output acks per batch")
    shutdown_timeout_s: float = Field(30.0, gt=0, description="max time to drain on SIGTERM")

    def safe_dump(self) -> dict[str, Any]:
        """For logs: every field, secrets masked."""
        return {k: (str(v) if v is not None else None) for k, v in self.model_dump().items()}


def env_var(field: str) -> str:
    return f"VAEWATCH_{field.upper()}"


def load_settings(overrides: dict[str, Any] | None = None) -> WorkerSettings:
    """Environment, then flags (non-None overrides win). Bad values: one line, no traceback."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return WorkerSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise UserInputError(f"{env_var(name)}: {first['msg']}") from None
