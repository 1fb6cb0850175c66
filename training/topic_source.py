"""`vaewatch train --from-topic T --since 7d`: training data read back from the stream.

Windows are read from `since` to the end seen at start (`kafkaio.client`) and kept only
when the worker would score them with a model of the chosen channels: the worker's own
validation (`decode_window`, then `align_to_model` with the training window), so a window
the worker dead-letters never trains a model. The channels are chosen, in this order, by
`--channels`, by the production model of the name being trained, or by the topic itself
when all its valid windows share one channel set; a topic holding several sets with
nothing to choose between them is refused. What was used and what was skipped, and why,
is reported. Kept windows are stitched back into one series per `series_id` (overlapping
windows agree on shared time steps; the first reading wins) and written as `train.csv`
files, so training runs through exactly the CSV path.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from schemas.messages import (
    MAX_MESSAGE_BYTES,
    DecodedWindow,
    InvalidMessage,
    align_to_model,
    decode_window,
    iso,
)
from vwbase.errors import UserInputError

log = structlog.get_logger(__name__)
SHOWN_CHANNELS = 4


@dataclass
class TopicSelection:
    """The windows of a topic that fit the chosen channels, stitched per series."""

    topic: str
    channels: tuple[str, ...]
    channels_from: str  # "--channels", "production model NAME@V" or "the topic"
    series: dict[str, dict[datetime, np.ndarray]] = field(default_factory=dict)
    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # error class -> windows

    def add(self, window: DecodedWindow, values: np.ndarray) -> None:
        rows = self.series.setdefault(window.series_id, {})
        for i, row in enumerate(values):
            rows.setdefault(window.start + timedelta(milliseconds=i * window.interval_ms), row)
        self.used += 1

    def report(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "channels": list(self.channels),
            "channels_from": self.channels_from,
            "windows_used": self.used,
            "windows_skipped": dict(self.skipped.most_common()),
            "series": len(self.series),
        }


def _shown(channels: Sequence[str]) -> str:
    head = ", ".join(channels[:SHOWN_CHANNELS])
    more = f", ... {len(channels)} channels" if len(channels) > SHOWN_CHANNELS else ""
    return f"[{head}{more}]"


def _decode_all(raws: Iterable[bytes], max_bytes: int) -> tuple[list[DecodedWindow], Counter[str]]:
    windows, invalid = [], Counter[str]()
    for raw in raws:
        try:
            windows.append(decode_window(raw, max_bytes))
        except InvalidMessage as exc:
            invalid[exc.error_class] += 1
    return windows, invalid


def _one_channel_set(topic: str, windows: Sequence[DecodedWindow]) -> tuple[str, ...]:
    """The topic's channel set when its windows agree on one; a mix is refused."""
    sets = Counter(frozenset(w.channels) for w in windows)
    if len(sets) == 1:
        return windows[0].channels
    first = {frozenset(w.channels): w.channels for w in reversed(windows)}
    mix = "; ".join(f"{n} windows with {_shown(first[s])}" for s, n in sets.most_common(4))
    raise UserInputError(
        f"topic {topic!r} mixes {len(sets)} channel sets ({mix}): choose one with "
        "--channels NAME..., or train a name whose production model has the channels"
    )


def select_windows(
    topic: str,
    raws: Iterable[bytes],
    channels: Sequence[str] | None,
    channels_from: str,
    min_length: int,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> TopicSelection:
    """Keep the windows the worker would accept for a model of `channels` and `min_length`
    steps (the topic's own channel set when `channels` is None); count the rest by reason."""
    windows, invalid = _decode_all(raws, max_bytes)
    if not windows:
        reasons = f" (all {sum(invalid.values())} invalid: {_counts(invalid)})" if invalid else ""
        raise UserInputError(f"no valid window in topic {topic!r} in that time{reasons}")
    if channels is None:
        channels, channels_from = _one_channel_set(topic, windows), "the topic"
    selection = TopicSelection(topic, tuple(channels), channels_from, skipped=invalid)
    for window in windows:
        try:
            selection.add(window, align_to_model(window, selection.channels, min_length))
        except InvalidMessage as exc:
            selection.skipped[exc.error_class] += 1
    if not selection.used:
        raise UserInputError(
            f"no window of topic {topic!r} fits channels {_shown(selection.channels)} "
            f"(from {channels_from}) and window {min_length}: skipped {_counts(selection.skipped)}"
        )
    return selection


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


def write_train_csvs(selection: TopicSelection) -> Path:
    """One `train.csv` per series in a new temporary directory (returned)."""
    out = Path(tempfile.mkdtemp(prefix="vaewatch-topic-"))
    for series_id, rows in selection.series.items():
        times = sorted(rows)
        path = out / "topic" / series_id.replace("/", "_") / "train.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", *selection.channels])
            for t in times:
                row = rows[t]
                writer.writerow([iso(t), *("" if np.isnan(v) else repr(float(v)) for v in row)])
    return out


def dump_topic_to_csv(
    topic: str,
    since_s: float,
    bootstrap: str | None,
    channels: Sequence[str] | None,
    channels_from: str,
    min_length: int,
) -> tuple[Path, TopicSelection]:
    """Read, select (see the module docstring), write; the directory and what was used."""
    from kafkaio.client import read_topic_values
    from kafkaio.settings import kafka_settings

    settings = kafka_settings(bootstrap)
    since_ms = int((time.time() - since_s) * 1000)
    raws = read_topic_values(settings, topic, since_ms)
    selection = select_windows(
        topic, raws, channels, channels_from, min_length, settings.max_message_bytes
    )
    out = write_train_csvs(selection)
    log.info("topic_windows_selected", **selection.report(), dir=str(out))
    return out, selection
