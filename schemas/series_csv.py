"""The series CSV format of contract §4 (training, scoring, evaluation, replay).

One folder per series with `train.csv` and `test.csv`: header row, first column
`timestamp`, one numeric column per channel, then an optional `label` (0/1). Every problem
is reported as one line naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from vaewatch.errors import UserInputError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SeriesTable:
    path: Path
    timestamps: list[str]
    channels: tuple[str, ...]
    values: np.ndarray  # (T, C) float64, empty cell = NaN
    labels: np.ndarray | None  # (T,) int8 0/1

    @property
    def dataset(self) -> str:
        return self.path.parent.parent.name

    @property
    def series(self) -> str:
        return self.path.parent.name


def _header(path: Path, header: list[str]) -> tuple[list[str], bool]:
    if not header or header[0].strip() != "timestamp":
        raise UserInputError(f"{path}: the first column must be `timestamp`")
    names = [h.strip() for h in header[1:]]
    has_label = bool(names) and names[-1] == "label"
    channels = names[:-1] if has_label else names
    if not channels:
        raise UserInputError(f"{path}: no channel columns after `timestamp`")
    if len(set(names)) != len(names) or any(not c for c in channels):
        raise UserInputError(f"{path}: column names must be non-empty and unique")
    return channels, has_label


def _parse_rows(path: Path, rows: list[list[str]], header: list[str]) -> np.ndarray:
    width = len(header)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise UserInputError(
                f"{path} line {i + 2}: {len(row)} fields, expected {width} like the header"
            )
    cells = np.array([r[1:] for r in rows], dtype=object) if rows else np.empty((0, width - 1))
    cells = np.where(cells == "", "nan", cells)
    try:
        return cells.astype(np.float64)
    except ValueError:
        pass
    for i, row in enumerate(rows):  # slow path only to name the bad cell
        for j, cell in enumerate(row[1:], start=1):
            try:
                float(cell) if cell != "" else None
            except ValueError:
                raise UserInputError(
                    f"{path} line {i + 2}, column `{header[j]}`: {cell[:30]!r} is not a number"
                ) from None
    raise UserInputError(f"{path}: unparseable numbers")


def read_series_csv(path: Path) -> SeriesTable:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(reader)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: not a readable CSV file ({exc})") from None
    if header is None:
        raise UserInputError(f"{path}: the file is empty")
    channels, has_label = _header(path, header)
    if not rows:
        raise UserInputError(f"{path}: no data rows")
    numbers = _parse_rows(path, rows, [h.strip() for h in header])
    labels = None
    if has_label:
        raw = numbers[:, -1]
        if not np.isin(raw, (0.0, 1.0)).all():
            bad = int(np.argmax(~np.isin(raw, (0.0, 1.0))))
            raise UserInputError(f"{path} line {bad + 2}: label must be 0 or 1")
        labels = raw.astype(np.int8)
        numbers = numbers[:, :-1]
    if np.isinf(numbers).any():
        bad = int(np.argwhere(np.isinf(numbers))[0][0])
        raise UserInputError(f"{path} line {bad + 2}: infinite value")
    return SeriesTable(path, [r[0] for r in rows], tuple(channels), numbers, labels)


def find_series_files(paths: Sequence[Path], filename: str) -> list[Path]:
    """Every `filename` under each path (searched recursively); a path may be the file."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob(filename)))
        else:
            raise UserInputError(f"{p}: no such file or directory")
    if not found:
        raise UserInputError(f"no {filename} found under {', '.join(map(str, paths))}")
    return found


def parse_timestamps(
    timestamps: Sequence[str], default_interval_ms: int = 60000
) -> tuple[list[datetime], int]:
    """ISO-8601 (naive = UTC) or integer step indices (SMD) -> UTC datetimes, interval in ms."""
    if all(t.strip().lstrip("-").isdigit() for t in timestamps[:50]):
        steps = [int(t) for t in timestamps]
        times = [EPOCH + timedelta(milliseconds=s * default_interval_ms) for s in steps]
        return times, default_interval_ms
    try:
        times = [datetime.fromisoformat(t.strip()) for t in timestamps]
    except ValueError as exc:
        raise UserInputError(f"timestamps are neither ISO-8601 nor integer steps: {exc}") from None
    times = [t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC) for t in times]
    diffs = np.diff([t.timestamp() for t in times]) * 1000
    positive = diffs[diffs > 0]
    interval = int(np.median(positive)) if len(positive) else default_interval_ms
    return times, max(interval, 1)


def write_scores_csv(
    path: Path,
    timestamps: Sequence[str],
    score: np.ndarray,
    is_anomaly: np.ndarray,
    corrected: np.ndarray,
    channels: Sequence[str],
) -> None:
    """scores.csv of §4, written atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".scores-", suffix=".csv")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "score", "is_anomaly", *(f"corrected_{c}" for c in channels)])
        for i, ts in enumerate(timestamps):
            s = "" if np.isnan(score[i]) else f"{score[i]:.6g}"
            row = [f"{v:.9g}" for v in corrected[i]]
            writer.writerow([ts, s, int(is_anomaly[i]), *row])
    os.replace(tmp, path)
