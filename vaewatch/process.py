"""The worker as a process, the way an operator runs it: `python -m vaewatch worker`.

One helper for everything that starts a worker next to itself (the `make run` demo, the
speed and GPU benchmarks, the integration tests): the settings go in as `VAEWATCH_*`
environment variables, the JSON log into a file, and the caller signals and reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StreamTopics:
    """The topics one worker group reads and writes, and the group itself."""

    input: str
    events: str
    corrected: str
    dlq: str
    group: str
    episodes: str = "anomaly-episodes"

    @classmethod
    def tagged(cls, tag: str) -> StreamTopics:
        """Topics and group of their own for one run (tests, benchmarks): `in-<tag>`, ..."""
        return cls(f"in-{tag}", f"ev-{tag}", f"co-{tag}", f"in-{tag}.dlq", f"g-{tag}", f"ep-{tag}")


def worker_env(
    bootstrap: str,
    registry: Path,
    topics: StreamTopics,
    model: str = "default",
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """This process's environment plus the worker's settings; `extra` sets (or, with None,
    unsets) more. Metrics off and short group timeouts unless `extra` says otherwise."""
    env = dict(os.environ)
    env.update(
        VAEWATCH_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        VAEWATCH_REGISTRY=str(registry),
        VAEWATCH_MODEL=model,
        VAEWATCH_INPUT_TOPIC=topics.input,
        VAEWATCH_EVENTS_TOPIC=topics.events,
        VAEWATCH_CORRECTED_TOPIC=topics.corrected,
        VAEWATCH_DLQ_TOPIC=topics.dlq,
        VAEWATCH_EPISODES_TOPIC=topics.episodes,
        VAEWATCH_GROUP_ID=topics.group,
        VAEWATCH_METRICS_PORT="0",
        VAEWATCH_SESSION_TIMEOUT_MS="6000",
        VAEWATCH_HEARTBEAT_INTERVAL_MS="1000",
    )
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_worker(
    env: Mapping[str, str], log: Path, *, append: bool = False, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m vaewatch --log-format json worker` (no console script needed) with `env`
    (see `worker_env`), stdout and stderr into `log`."""
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vaewatch", "--log-format", "json", "worker"],
            env=dict(env),
            stdout=out,
            stderr=out,
            cwd=cwd,
        )
