"""The series CSV format: sample data reads; bad files fail with one line naming the spot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schemas.series_csv import (
    find_series_files,
    parse_timestamps,
    read_series_csv,
    write_scores_csv,
)
from vaewatch.errors import UserInputError

pytestmark = pytest.mark.unit
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_bundled_sample_reads_with_channels_and_labels() -> None:
    table = read_series_csv(SAMPLE / "smd" / "machine-1-2" / "test.csv")
    assert table.values.shape == (2000, 38)
    assert table.channels[0] == "dim_1"
    assert table.labels is not None and int(table.labels.sum()) == 140
    assert (table.dataset, table.series) == ("smd", "machine-1-2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("time,a\n1,2\n", "first column must be `timestamp`"),
        ("timestamp,a,label\n1,2\n", "line 2: 2 fields"),
        ("timestamp,a\n1,2\n2,abc\n", "line 3, column `a`: 'abc' is not a number"),
        ("timestamp,a,label\n1,2,5\n", "label must be 0 or 1"),
        ("timestamp\n1\n", "no channel columns"),
    ],
)
def test_bad_csv_is_one_line_naming_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(UserInputError) as info:
        read_series_csv(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("timestamp,a,b\n1,,2\n2,3,4\n")
    table = read_series_csv(path)
    assert np.isnan(table.values[0, 0]) and table.labels is None


def test_an_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"no train\.csv found"):
        find_series_files([tmp_path], "train.csv")


def test_timestamps_iso_and_integer_steps() -> None:
    times, interval = parse_timestamps(["2026-01-01T00:00:00", "2026-01-01T00:05:00"])
    assert interval == 300_000 and times[0].tzinfo is not None
    times, interval = parse_timestamps(["10", "11"], default_interval_ms=60_000)
    assert interval == 60_000 and (times[1] - times[0]).total_seconds() == 60


def test_scores_csv_has_the_contract_columns(tmp_path: Path) -> None:
    out = tmp_path / "d" / "s" / "scores.csv"
    write_scores_csv(
        out, ["1", "2"], np.array([0.5, np.nan]), np.array([0, 1]), np.ones((2, 2)), ["a", "b"]
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,score,is_anomaly,corrected_a,corrected_b"
    assert lines[2] == "2,,1,1,1"
