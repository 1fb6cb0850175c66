"""What the worker is waiting for, said clearly and periodically while it lasts.

Some start-up states heal by themselves: no model published yet (or none under the name
asked for), a broker that is not up yet or a host name not yet in DNS. The worker keeps
retrying those (settings that can never work stop it instead: `worker.preflight`), and
an operator sees why it is not ready in three places: a `waiting_for` warning at once
and then every `every_s` seconds, the gauge `vaewatch_waiting_for{reason}` = 1, and
`/readyz` answering 503 (no model or no partitions). `waiting_over` says when it ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Gauge

log = structlog.get_logger(__name__)
REASONS = ("broker", "model")


@dataclass
class _Wait:
    since: float
    last_said: float


class Waiting:
    def __init__(
        self, gauge: Gauge, every_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._gauge = gauge
        self._every_s = every_s
        self._clock = clock
        self._waits: dict[str, _Wait] = {}
        self._lock = threading.Lock()
        for reason in REASONS:
            gauge.labels(reason=reason).set(0)

    def still(self, reason: str, why: str) -> None:
        """Waiting for `reason` because `why`: logged now if due, else counted silently."""
        now = self._clock()
        with self._lock:
            wait = self._waits.get(reason)
            if wait is None:
                wait = self._waits[reason] = _Wait(since=now, last_said=now - self._every_s)
                self._gauge.labels(reason=reason).set(1)
            due = now - wait.last_said >= self._every_s
            if due:
                wait.last_said = now
        if due:
            log.warning(
                "waiting_for",
                reason=reason,
                why=why,
                waited_s=round(now - wait.since, 1),
                next_report_in_s=self._every_s,
            )

    def over(self, reason: str) -> None:
        """`reason` is no longer awaited (a model was loaded, the broker answered)."""
        with self._lock:
            wait = self._waits.pop(reason, None)
            self._gauge.labels(reason=reason).set(0)
        if wait is not None:
            log.info("waiting_over", reason=reason, waited_s=round(self._clock() - wait.since, 1))

    def waiting_for(self) -> set[str]:
        with self._lock:
            return set(self._waits)
