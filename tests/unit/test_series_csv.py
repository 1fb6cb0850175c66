"""The series CSV format: sample data reads; bad files fail with one line naming the spot."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from schemas.series_csv import (
    find_series_files,
    parse_timestamps,
    read_series_csv,
    write_scores_csv,
)
from vwbase.errors import UserInputError

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
        ("", "the file is empty"),
        ("timestamp,a\n", "no data rows"),
        ("time,a\n1,2\n", "first column must be `timestamp`"),
        ("timestamp,a,label\n1,2\n", "line 2: 2 fields, expected 3"),
        ("timestamp,a\n1,2\n2,abc\n", "line 3, column `a`: 'abc' is not a number"),
        ("timestamp,a\n1,2\n\n3,x\n", "line 4, column `a`: 'x' is not a number"),
        ("timestamp,a,label\n1,2,0\n2,3,5\n", "line 3, column `label`: '5' is not 0 or 1"),
        ("timestamp,a,label\n1,2,yes\n", "line 2, column `label`: 'yes' is not a number"),
        ("timestamp\n1\n", "no channel columns"),
        ("timestamp,label\n1,0\n", "no channel columns"),
        ("timestamp,a,a\n1,2,3\n", "column `a` appears twice"),
        ("timestamp,a,timestamp\n1,2,3\n", "column `timestamp` appears twice"),
        ("timestamp,,b\n1,2,3\n", "line 1, column 2: the column has no name"),
        ("timestamp,a\n1,inf\n", "line 2, column `a`: infinite value"),
    ],
)
def test_bad_csv_is_one_line_naming_file_and_spot(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(UserInputError) as info:
        read_series_csv(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_non_utf8_file_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no such file"):
        read_series_csv(tmp_path / "absent.csv")
    binary = tmp_path / "train.csv"
    binary.write_bytes(b"timestamp,a\n1,\xff\xfe\n")
    with pytest.raises(UserInputError, match="not a readable UTF-8 CSV"):
        read_series_csv(binary)


def test_spreadsheet_byte_order_mark_and_trailing_blank_line_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes("\ufefftimestamp,a,label\r\n1,2.5,1\r\n2,3.5,0\r\n\r\n".encode())
    table = read_series_csv(path)
    assert table.channels == ("a",) and table.values[:, 0].tolist() == [2.5, 3.5]
    assert table.labels is not None and table.labels.dtype == np.int8
    assert table.labels.tolist() == [1, 0]


def test_empty_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("timestamp,a,b\n1,,2\n2,3,4\n")
    table = read_series_csv(path)
    assert np.isnan(table.values[0, 0]) and table.labels is None


def test_an_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"no train\.csv found"):
        find_series_files([tmp_path], "train.csv")
    with pytest.raises(UserInputError, match="no such file or directory"):
        find_series_files([tmp_path / "absent"], "train.csv")


def test_series_files_are_found_recursively_sorted_and_once(tmp_path: Path) -> None:
    for series in ("b", "a"):
        (tmp_path / "ds" / series).mkdir(parents=True)
        (tmp_path / "ds" / series / "train.csv").write_text("timestamp,x\n1,2\n")
        (tmp_path / "ds" / series / "test.csv").write_text("timestamp,x\n1,2\n")
    direct = tmp_path / "ds" / "b" / "train.csv"
    found = find_series_files([tmp_path, direct], "train.csv")
    assert found == [tmp_path / "ds" / "a" / "train.csv", direct]


def test_timestamps_iso_and_integer_steps() -> None:
    times, interval = parse_timestamps(["2026-01-01T00:00:00", "2026-01-01T00:05:00"])
    assert interval == 300_000 and times[0] == datetime(2026, 1, 1, tzinfo=UTC)
    times, interval = parse_timestamps(["10", "11"], default_interval_ms=60_000)
    assert interval == 60_000 and (times[1] - times[0]).total_seconds() == 60
    assert times[0] == datetime(1970, 1, 1, 0, 10, tzinfo=UTC)


def test_iso_interval_is_the_median_step_despite_gaps_and_offsets() -> None:
    stamps = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", "2026-01-01T00:00:20"]
    stamps += ["2026-01-01T01:00:30+01:00", "2026-01-01T01:10:00Z"]
    times, interval = parse_timestamps(stamps)
    assert interval == 10_000
    assert times[3] == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def test_a_bad_timestamp_late_in_the_file_names_its_row() -> None:
    stamps = [str(i) for i in range(60)] + ["noon"]
    with pytest.raises(
        UserInputError, match="data row 61: timestamp 'noon' is not an integer step"
    ):
        parse_timestamps(stamps)
    with pytest.raises(UserInputError, match="data row 2: timestamp 'noon' is neither ISO-8601"):
        parse_timestamps(["2026-01-01T00:00:00", "noon"])


def test_scores_csv_has_the_contract_columns(tmp_path: Path) -> None:
    out = tmp_path / "d" / "s" / "scores.csv"
    write_scores_csv(
        out, ["1", "2"], np.array([0.5, np.nan]), np.array([0, 1]), np.ones((2, 2)), ["a", "b"]
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,score,is_anomaly,corrected_a,corrected_b"
    assert lines[2] == "2,,1,1,1"


def test_scores_csv_is_written_atomically_over_an_old_one(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("old")
    with pytest.raises(IndexError):  # fewer scores than timestamps: fails mid-way
        write_scores_csv(out, ["1", "2"], np.array([0.5]), np.array([0]), np.ones((1, 1)), ["a"])
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_full_size_smd_file_reads_fast(tmp_path: Path) -> None:
    """SMD series are ~23k rows x 38 channels; training reads dozens of them."""
    rng = np.random.default_rng(0)
    values = rng.random((23_000, 38)).round(6)
    header = "timestamp," + ",".join(f"dim_{i}" for i in range(1, 39)) + ",label"
    lines = [f"{i}," + ",".join(map(str, row)) + ",0" for i, row in enumerate(values)]
    path = tmp_path / "train.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    started = time.perf_counter()
    table = read_series_csv(path)
    elapsed = time.perf_counter() - started
    np.testing.assert_array_equal(table.values, values)
    assert elapsed < 2.0, f"{elapsed:.2f} s (target 0.5 s on an idle machine)"
