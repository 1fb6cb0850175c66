"""`vaewatch train --from-topic T --since 7d`: training data read back from the stream.

Windows are read from `since` to the end seen at start (`worker.kafka_edge`), decoded with
the wire schema (invalid ones skipped and counted), stitched back into one series per
`series_id` (overlapping windows agree on shared time steps; the first reading wins) and
written as `train.csv` files, so training runs through exactly the CSV path.
"""

from __future__ import annotations

import csv
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import structlog

from schemas.messages import InvalidMessage, decode_window, iso
from vaewatch.errors import UserInputError

log = structlog.get_logger(__name__)


def _stitch(rows: dict[datetime, np.ndarray]) -> tuple[list[datetime], np.ndarray]:
    times = sorted(rows)
    return times, np.stack([rows[t] for t in times])


def dump_topic_to_csv(topic: str, since_s: float, bootstrap: str | None) -> Path:
    from worker.kafka_edge import read_topic_values
    from worker.settings import load_settings

    settings = load_settings({"kafka_bootstrap_servers": bootstrap})
    since_ms = int((time.time() - since_s) * 1000)
    series: dict[str, dict[datetime, np.ndarray]] = {}
    channels: tuple[str, ...] | None = None
    skipped = 0
    for raw in read_topic_values(settings, topic, since_ms):
        try:
            window = decode_window(raw, settings.max_message_bytes)
        except InvalidMessage:
            skipped += 1
            continue
        if channels is None:
            channels = window.channels
        if window.channels != channels:
            skipped += 1
            continue
        rows = series.setdefault(window.series_id, {})
        for i, row in enumerate(window.values):
            rows.setdefault(window.start + timedelta(milliseconds=i * window.interval_ms), row)
    if not series or channels is None:
        raise UserInputError(f"no valid windows in topic {topic!r} since {since_s:.0f}s ago")
    out = Path(tempfile.mkdtemp(prefix="vaewatch-topic-"))
    for series_id, rows in series.items():
        times, values = _stitch(rows)
        path = out / "topic" / series_id.replace("/", "_") / "train.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", *channels])
            for t, row in zip(times, values, strict=True):
                writer.writerow([iso(t), *("" if np.isnan(v) else repr(float(v)) for v in row)])
    log.info("topic_dumped", topic=topic, series=len(series), skipped=skipped, dir=str(out))
    return out
