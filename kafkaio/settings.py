"""How to reach the cluster: bootstrap servers and security, from `VAEWATCH_*` variables.

`KafkaSettings` is the part of the configuration every Kafka client needs, whoever runs
it: the worker's `WorkerSettings` extends it, and `train --from-topic` reads it alone.
Secrets are `SecretStr`: they print as `**********` in reprs, logs (`safe_dump`) and
`--help`; only `kafkaio.client.security_kwargs` unwraps them, for the client.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vwbase.errors import UserInputError

ENV_PREFIX = "VAEWATCH_"
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]]+):\d{1,5}$")  # host:port, [v6]:port

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


def env_var(field: str) -> str:
    """The environment variable of a settings field (`max_batch` -> `VAEWATCH_MAX_BATCH`)."""
    return f"{ENV_PREFIX}{field.upper()}"


class KafkaSettings(BaseSettings):
    """Contract §5's connection and security settings. Frozen: read once at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", description="Kafka bootstrap servers, host:port[,host:port...]"
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="larger inputs go to the DLQ unparsed"
    )
    producer_idempotence: bool = Field(
        True,
        description="idempotent producer (no duplicates from producer retries); turn off only "
        "where the cluster refuses InitProducerId (no IdempotentWrite ACL, some S3-backed brokers)",
    )

    # --- security (passed through to every Kafka client) ----------------------------------
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL"
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER"
    )
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    ssl_cafile: Path | None = Field(None, description="CA bundle (PEM) to verify the brokers")
    ssl_certfile: Path | None = Field(None, description="client certificate (PEM), mutual TLS")
    ssl_keyfile: Path | None = Field(None, description="client private key (PEM)")
    ssl_password: SecretStr | None = Field(None, description="password of the key (never logged)")
    ssl_check_hostname: bool = Field(True, description="verify the broker certificate host name")

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_is_there(cls, value: Path | None) -> Path | None:
        """A TLS file that is not there can never work: said now, not as a broker timeout."""
        if value is None:
            return None
        if not value.exists():
            raise ValueError(f"{value}: no such file")
        if not value.is_file():
            raise ValueError(f"{value} is not a file")
        if not os.access(value, os.R_OK):
            raise ValueError(f"{value} is not readable")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_are_host_port(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        bad = [s for s in servers if not _HOST_PORT.match(s)]
        if not servers or bad:
            raise ValueError(f"expected host:port[,host:port...], not {value!r}")
        return ",".join(servers)

    @model_validator(mode="after")
    def _sasl_has_a_mechanism(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ValueError(
                f"{env_var('sasl_mechanism')} is required with {self.security_protocol}"
            )
        return self

    def safe_dump(self) -> dict[str, Any]:
        """Every field as JSON-ready values for the start-up log; secrets masked."""
        dumped: dict[str, Any] = self.model_dump(mode="json")
        for name in ("sasl_password", "ssl_password"):
            if dumped.get(name) is not None:
                dumped[name] = "**********"
        return dumped


def one_line(exc: ValidationError, flags: dict[str, str], what: str = "worker settings") -> str:
    """A settings `ValidationError` as one line naming the env var (and the flag, if any)."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    if not field:  # a cross-field check: the message names the fields itself
        return f"{what}: {message}"
    where = env_var(field)
    if field in flags:
        where += f" / {flags[field]}"
    return f"{where}: {message}"


def kafka_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """The environment's connection settings; `bootstrap_servers`, when given, wins."""
    given: dict[str, Any] = (
        {} if bootstrap_servers is None else {"kafka_bootstrap_servers": bootstrap_servers}
    )
    try:
        return KafkaSettings(**given)
    except ValidationError as exc:
        raise UserInputError(one_line(exc, {}, "kafka settings")) from None
