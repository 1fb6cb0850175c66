"""`train --from-topic`: only windows the worker would accept, one channel set, reported."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.messages import encode_window
from training.topic_source import select_windows, write_train_csvs
from vwbase.errors import UserInputError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKAB = [f"s{i}" for i in range(8)]


def windows(series: str, channels: list[str], n: int, rows: int = 16) -> list[bytes]:
    """`n` back-to-back windows of `rows` steps; the value at step t, channel c is t + c/10."""
    out = []
    for k in range(n):
        start = T0 + timedelta(seconds=k * rows)
        steps = np.arange(k * rows, (k + 1) * rows, dtype=np.float64)[:, None]
        values = steps + np.arange(len(channels))[None, :] / 10
        out.append(encode_window(f"{series}/{k}", series, start, 1000, channels, values))
    return out


MIXED = [*windows("skab", SKAB, 25), *windows("nab", ["value"], 5), b"{not json", b"[1]"]


def test_a_topic_mixing_channel_sets_is_refused_with_what_it_holds() -> None:
    with pytest.raises(UserInputError) as err:
        select_windows("mixed", MIXED, None, "the topic", min_length=8)
    message = str(err.value)
    assert "topic 'mixed' mixes 2 channel sets" in message
    assert "25 windows with [s0, s1, s2, s3, ... 8 channels]" in message
    assert "5 windows with [value]" in message
    assert "--channels" in message and "\n" not in message


def test_the_channels_asked_for_select_the_windows_and_the_rest_is_counted() -> None:
    picked = select_windows("mixed", MIXED, ["value"], "--channels", min_length=8)
    assert picked.report() == {
        "topic": "mixed",
        "channels": ["value"],
        "channels_from": "--channels",
        "windows_used": 5,
        "windows_skipped": {"channels_mismatch": 25, "not_json": 1, "not_object": 1},
        "series": 1,
    }
    rows = picked.series["nab"]
    assert len(rows) == 5 * 16
    assert [float(rows[T0 + timedelta(seconds=t)][0]) for t in (0, 17, 79)] == [0.0, 17.0, 79.0]


def test_a_model_s_channels_are_taken_from_wider_windows_in_the_model_s_order() -> None:
    raws = windows("pump", ["extra", "b", "a"], 3)
    picked = select_windows("t", raws, ["a", "b"], "production model m@2", min_length=8)
    assert picked.used == 3 and picked.channels == ("a", "b")
    first = picked.series["pump"][T0]
    assert first.tolist() == [0.2, 0.1]  # columns a (index 2) and b (index 1)


def test_windows_shorter_than_the_training_window_are_skipped_like_the_worker_does() -> None:
    raws = [*windows("long", ["v"], 2, rows=64), *windows("short", ["v"], 3, rows=16)]
    picked = select_windows("t", raws, None, "the topic", min_length=32)
    assert picked.channels_from == "the topic"
    assert (picked.used, dict(picked.skipped)) == (2, {"too_short": 3})
    assert set(picked.series) == {"long"}


def test_a_topic_whose_windows_share_one_set_in_any_order_is_fine() -> None:
    raws = [*windows("x", ["a", "b"], 2), *windows("y", ["b", "a"], 2)]
    picked = select_windows("t", raws, None, "the topic", min_length=8)
    assert picked.channels == ("a", "b") and picked.used == 4
    assert picked.series["y"][T0].tolist() == [0.1, 0.0]  # y's columns put in a, b order


def test_nothing_that_fits_is_an_error_naming_why() -> None:
    with pytest.raises(UserInputError) as err:
        select_windows("mixed", MIXED, ["temperature"], "--channels", min_length=8)
    assert str(err.value) == (
        "no window of topic 'mixed' fits channels [temperature] (from --channels) and "
        "window 8: skipped 30 channels_mismatch, 1 not_json, 1 not_object"
    )


def test_a_topic_of_only_invalid_messages_is_an_error() -> None:
    with pytest.raises(UserInputError, match=r"no valid window .* \(all 2 invalid: 1 not_json"):
        select_windows("bad", [b"{not json", b"[1]"], None, "the topic", min_length=8)


def test_the_csvs_hold_the_chosen_channels_in_order_and_missing_as_empty() -> None:
    raw = encode_window("w", "site/pump", T0, 500, ["b", "a"], np.array([[1.0, np.nan]] * 8))
    out = write_train_csvs(select_windows("t", [raw], ["a", "b"], "--channels", 8))
    with (out / "topic" / "site_pump" / "train.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "a", "b"]
    assert rows[1] == ["2026-01-01T00:00:00.000Z", "", "1.0"]
    assert rows[2][0] == "2026-01-01T00:00:00.500Z" and len(rows) == 9
