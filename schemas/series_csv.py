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

from vwbase.errors import UserInputError

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
    if any(not c for c in channels):
        column = names.index("") + 2
        raise UserInputError(f"{path} line 1, column {column}: the column has no name")
    seen: set[str] = {"timestamp"}
    for name in names:
        if name in seen:
            raise UserInputError(f"{path} line 1: column `{name}` appears twice")
        seen.add(name)
    return channels, has_label


def _parse_rows(
    path: Path, rows: list[list[str]], line_numbers: list[int], header: list[str]
) -> np.ndarray:
    width = len(header)
    for row, line in zip(rows, line_numbers, strict=True):
        if len(row) != width:
            raise UserInputError(
                f"{path} line {line}: {len(row)} fields, expected {width} like the header"
            )
    cells = np.array([r[1:] for r in rows], dtype=object)
    cells = np.where(cells == "", "nan", cells)
    try:
        return cells.astype(np.float64)
    except ValueError:
        pass
    for row, line in zip(rows, line_numbers, strict=True):  # slow path, only to name the cell
        for j, cell in enumerate(row[1:], start=1):
            try:
                float(cell) if cell != "" else None
            except ValueError:
                raise UserInputError(
                    f"{path} line {line}, column `{header[j]}`: {cell[:30]!r} is not a number"
                ) from None
    raise UserInputError(f"{path}: unparseable numbers")  # pragma: no cover - astype agrees


def _read_rows(path: Path) -> tuple[list[str] | None, list[list[str]], list[int]]:
    """Header, data rows and each row's line number in the file; blank lines are skipped.

    `utf-8-sig` drops the byte-order mark spreadsheet exports put before `timestamp`.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            for row in reader:
                if row:
                    rows.append(row)
                    line_numbers.append(reader.line_num)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserInputError(f"{path}: is a directory, expected a CSV file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    return header, rows, line_numbers


def read_series_csv(path: Path) -> SeriesTable:
    """One series file of contract §4; every problem is one line naming file, line, column."""
    path = Path(path)
    header, rows, line_numbers = _read_rows(path)
    if header is None:
        raise UserInputError(f"{path}: the file is empty")
    channels, has_label = _header(path, header)
    if not rows:
        raise UserInputError(f"{path}: no data rows")
    numbers = _parse_rows(path, rows, line_numbers, [h.strip() for h in header])
    labels = None
    if has_label:
        raw = numbers[:, -1]
        not_binary = ~np.isin(raw, (0.0, 1.0))
        if not_binary.any():
            bad = int(np.argmax(not_binary))
            cell = rows[bad][-1]
            raise UserInputError(
                f"{path} line {line_numbers[bad]}, column `label`: {cell[:30]!r} is not 0 or 1"
            )
        labels = raw.astype(np.int8)
        numbers = numbers[:, :-1]
    if np.isinf(numbers).any():
        row, col = (int(i) for i in np.argwhere(np.isinf(numbers))[0])
        raise UserInputError(
            f"{path} line {line_numbers[row]}, column `{channels[col]}`: infinite value"
        )
    return SeriesTable(path, [r[0] for r in rows], tuple(channels), numbers, labels)


def find_series_files(paths: Sequence[Path], filename: str) -> list[Path]:
    """Every `filename` under each path (searched recursively); a path may be the file."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(f for f in p.rglob(filename) if f.is_file()))
        else:
            raise UserInputError(f"{p}: no such file or directory")
    if not found:
        raise UserInputError(f"no {filename} found under {', '.join(map(str, paths))}")
    return list(dict.fromkeys(found))  # overlapping paths must not train on a file twice


def _is_step_index(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _steps_to_times(timestamps: Sequence[str], interval_ms: int) -> list[datetime]:
    bad = next((i for i, t in enumerate(timestamps) if not _is_step_index(t)), None)
    if bad is not None:
        raise UserInputError(
            f"data row {bad + 1}: timestamp {timestamps[bad][:40]!r} is not an integer step "
            "like the rows before it"
        )
    try:
        return [EPOCH + timedelta(milliseconds=int(t) * interval_ms) for t in timestamps]
    except OverflowError:
        raise UserInputError("integer timestamps are too large for step indices") from None


def parse_timestamps(
    timestamps: Sequence[str], default_interval_ms: int = 60000
) -> tuple[list[datetime], int]:
    """ISO-8601 (naive = UTC) or integer step indices (SMD) -> UTC datetimes, interval in ms.

    Step i becomes epoch + i * default_interval_ms. The interval of ISO timestamps is the
    median positive step, so a gap or a repeated row does not change it.
    """
    if timestamps and _is_step_index(timestamps[0]):
        return _steps_to_times(timestamps, default_interval_ms), default_interval_ms
    times = []
    for row, text in enumerate(timestamps, start=1):
        try:
            ts = datetime.fromisoformat(text.strip())
            times.append(ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC))
        except (ValueError, OverflowError):
            raise UserInputError(
                f"data row {row}: timestamp {text[:40]!r} is neither ISO-8601 nor an integer step"
            ) from None
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
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                ["timestamp", "score", "is_anomaly", *(f"corrected_{c}" for c in channels)]
            )
            for i, ts in enumerate(timestamps):
                s = "" if np.isnan(score[i]) else f"{score[i]:.6g}"
                row = ["" if np.isnan(v) else f"{v:.9g}" for v in corrected[i]]
                writer.writerow([ts, s, int(is_anomaly[i]), *row])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a reader never sees a half-written file
        raise
