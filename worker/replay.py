"""`vaewatch replay`: cut sensor windows from CSV series and produce them into a topic."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kafkaio.client import make_producer
from schemas.messages import encode_window, iso
from schemas.series_csv import SeriesTable, find_series_files, parse_timestamps, read_series_csv
from vwbase.errors import UserInputError
from worker.settings import WorkerSettings


@dataclass(frozen=True)
class ReplayWindow:
    series_id: str
    window_id: str
    start_row: int
    value: bytes


def series_windows(
    table: SeriesTable, window: int, stride: int, interval_ms: int | None = None
) -> Iterator[ReplayWindow]:
    """Windows of `window` rows every `stride` rows; the last partial window is dropped."""
    series_id = f"{table.dataset}/{table.series}"
    times, inferred = parse_timestamps(table.timestamps, interval_ms or 60000)
    interval = interval_ms or inferred
    for start in range(0, len(table.values) - window + 1, stride):
        window_id = f"{series_id}/{iso(times[start])}"
        values = table.values[start : start + window]
        raw = encode_window(window_id, series_id, times[start], interval, table.channels, values)
        yield ReplayWindow(series_id, window_id, start, raw)


def load_replay_tables(paths: Sequence[Path], split: str) -> list[SeriesTable]:
    return [read_series_csv(p) for p in find_series_files(paths, f"{split}.csv")]


def replay_series(
    settings: WorkerSettings,
    tables: Sequence[SeriesTable],
    topic: str,
    *,
    window: int = 128,
    stride: int | None = None,
    rate: float = 0.0,
    limit: int | None = None,
    progress: bool = False,
) -> int:
    """Produce the windows of every table (acks=all, flushed); returns how many were sent."""
    stride = stride or window
    if any(len(t.values) < window for t in tables):
        short = next(t for t in tables if len(t.values) < window)
        raise UserInputError(
            f"{short.path}: {len(short.values)} rows, shorter than window {window}"
        )
    total = sum((len(t.values) - window) // stride + 1 for t in tables)
    total = min(total, limit) if limit else total
    producer = make_producer(settings, delivery_timeout_s=settings.flush_timeout_s, linger_ms=20)
    sent = 0
    started = time.perf_counter()
    with tqdm(total=total, desc=f"replay -> {topic}", unit="win", disable=not progress) as bar:
        for table in tables:
            for w in series_windows(table, window, stride):
                if limit and sent >= limit:
                    break
                producer.send(topic, key=w.series_id.encode(), value=w.value)
                sent += 1
                bar.update(1)
                if rate > 0:
                    ahead = sent / rate - (time.perf_counter() - started)
                    if ahead > 0:
                        time.sleep(ahead)
    producer.flush(timeout=60)
    producer.close()
    return sent


def expected_window_labels(table: SeriesTable, window: int, stride: int) -> np.ndarray:
    """Per replayed window: 1 when any of its rows is labelled anomalous."""
    labels = table.labels if table.labels is not None else np.zeros(len(table.values), np.int8)
    starts = range(0, len(table.values) - window + 1, stride)
    return np.array([int(labels[s : s + window].any()) for s in starts], dtype=np.int8)
