"""Assigned partitions wait for their per-series state before their records are scored.

When the consumer is given a partition, its series' state must be read from the changelog
(`worker.kafka_edge.StateChangelog`) and installed (`worker.state.SeriesStates`, on the
scoring thread, queued in order with the batches) before the first of its records is
scored. The read happens here, on the loop's thread; until it succeeded, the partition's
records are held back in order (nothing is dropped, so nothing can be committed past
them), and a read that fails (broker away, too slow) is retried with backoff.

The position the rollback rule splits at (`SeriesStates.restore_partition`) is the first
offset this member will process: the poll that assigns a partition may already have
returned its first records (the consumer's position is then past them, measured on
Tansu), so it is the first of those, else the consumer's position.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from kafkaio.records import InRecord, Source, TopicPartition
from vwbase.errors import BrokerError

log = structlog.get_logger(__name__)
StateReader = Callable[[int], list[tuple[bytes, bytes | None]]]  # partition -> changelog
# (partition, its changelog records, the position, when the restore started)
Installer = Callable[[TopicPartition, list[tuple[bytes, bytes | None]], int, float], None]
Submit = Callable[..., object]  # runs a function on the scoring thread, in order (Executor.submit)
RESTORE_RETRY_S = 0.5  # first backoff after a failed changelog read (doubles, at most 30 s)


class PartitionRestorer:
    def __init__(
        self, source: Source, read_state: StateReader | None, install: Installer, submit: Submit
    ):
        self.source = source
        self.read_state = read_state  # None: nothing to restore (no changelog)
        self.install = install  # runs on the scoring thread...
        self.submit = submit  # ...queued there, in order with the batches
        self._unrestored: dict[TopicPartition, int | None] = {}  # -> first offset to process
        self._held: dict[TopicPartition, list[InRecord]] = {}  # their records meanwhile
        self._retry_at = 0.0
        self._delay = RESTORE_RETRY_S

    def assigned(self, partitions: set[TopicPartition], polled: list[InRecord]) -> None:
        """New partitions wait for their state."""
        if self.read_state is None:
            return
        for tp in partitions:
            first = [r.offset for r in polled if (r.topic, r.partition) == tp]
            self._unrestored[tp] = min(first) if first else None
        self._retry_at = 0.0

    def revoked(self, partitions: set[TopicPartition]) -> list[InRecord]:
        """Revoked partitions wait no more; their held records, dropped (the caller notes
        where they began, as for the batch's own records of those partitions)."""
        dropped: list[InRecord] = []
        for tp in partitions:
            self._unrestored.pop(tp, None)
            dropped += self._held.pop(tp, [])
        return dropped

    def restore(self) -> None:
        """Read each waiting partition's changelog (in partition order) and queue its install."""
        if not self._unrestored or time.monotonic() < self._retry_at:
            return
        for tp in sorted(self._unrestored):
            started = time.perf_counter()
            try:
                position = self._unrestored[tp]
                if position is None:
                    position = self.source.position(tp)
                records = self.read_state(tp[1]) if self.read_state is not None else []
            except BrokerError as exc:
                log.warning(
                    "state_restore_failed_retrying",
                    partition=f"{tp[0]}-{tp[1]}",
                    error=str(exc),
                    retry_in_s=self._delay,
                )
                self._retry_at = time.monotonic() + self._delay
                self._delay = min(self._delay * 2, 30.0)
                return
            del self._unrestored[tp]
            self._delay = RESTORE_RETRY_S
            self.submit(self.install, tp, records, position, started)

    def hold(self, polled: list[InRecord]) -> list[InRecord]:
        """Records of partitions still waiting (or with records held before them) wait, in
        order; the rest go on."""
        if not self._unrestored and not self._held:
            return polled
        out = []
        for r in polled:
            tp = (r.topic, r.partition)
            if tp in self._unrestored or tp in self._held:
                self._held.setdefault(tp, []).append(r)
            else:
                out.append(r)
        return out

    def released(self, room: int) -> list[InRecord]:
        """Up to `room` held records of partitions whose state is now queued, oldest first."""
        out: list[InRecord] = []
        for tp in [tp for tp in self._held if tp not in self._unrestored]:
            if len(out) >= room:
                break
            records = self._held.pop(tp)
            take = records[: room - len(out)]
            out += take
            if len(take) < len(records):
                self._held[tp] = records[len(take) :]
        return out
