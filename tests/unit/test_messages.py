"""Wire formats: contract examples parse; every kind of bad input has its own one-line reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import orjson
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.messages as schemas_messages
from schemas.messages import (
    MAX_STEPS,
    NARROW_CHANNELS,
    AnomalyEvent,
    CorrectedWindow,
    InvalidMessage,
    ModelRef,
    SensorWindow,
    SourceRef,
    align_to_model,
    dead_letter_headers,
    decode_window,
    encode_corrected,
    encode_event,
    encode_window,
    make_event_id,
)
from worker.events import merge_corrected, point_timestamp, severity

pytestmark = pytest.mark.unit

CONTRACT_EXAMPLE = b"""{"schema_version": 1,
 "window_id": "pump-17/2026-11-24T03:00:00Z",
 "series_id": "pump-17",
 "start": "2026-11-24T03:00:00Z",
 "interval_ms": 1000,
 "channels": ["temperature", "vibration"],
 "values": [[20.1, 0.02], [20.2, null], [20.2, 0.03]]}"""
_DROP = object()
MODEL, SOURCE = ModelRef(name="m", version="3"), SourceRef(topic="t", partition=0, offset=7)


def with_(**changes: object) -> bytes:
    doc = orjson.loads(CONTRACT_EXAMPLE)
    doc.update(changes)
    return orjson.dumps({k: v for k, v in doc.items() if v is not _DROP})


def reject(raw: bytes, max_bytes: int = 4 * 1024 * 1024) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        decode_window(raw, max_bytes)
    return info.value


# kind -> (message, expected error_class); the byte limit in these tests is the example + 50
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "ragged_row": (with_(values=[[1.0, 2.0], [3.0]]), "wrong_shape"),
    "row_not_a_list": (with_(values=[[1.0, 2.0], 3.0]), "wrong_shape"),
    "nested_cell": (with_(values=[[1.0, [2.0]]]), "wrong_shape"),
    "nan_literal": (CONTRACT_EXAMPLE.replace(b"20.1", b"NaN"), "non_finite"),
    "infinity_literal": (CONTRACT_EXAMPLE.replace(b"0.03", b"-Infinity"), "non_finite"),
    "overflow_to_inf": (CONTRACT_EXAMPLE.replace(b"20.1", b"1e999"), "non_finite"),
    "string_in_values": (with_(values=[[1.0, "2.0"]]), "wrong_type"),
    "bool_in_values": (with_(values=[[1.0, True]]), "wrong_type"),
    "too_many_bytes": (CONTRACT_EXAMPLE + b" " * 100, "too_large"),
    "wrong_version": (with_(schema_version=2), "wrong_version"),
    "missing_field": (with_(series_id=_DROP), "missing_field"),
    "not_json": (b"{not json", "not_json"),
    "not_object": (b"[1, 2]", "not_object"),
    "no_rows": (with_(values=[]), "empty"),
    "bad_timestamp": (with_(start="yesterday"), "bad_timestamp"),
    "naive_timestamp": (with_(start="2026-11-24T03:00:00"), "bad_timestamp"),
    "end_beyond_year_9999": (with_(interval_ms=2**62), "bad_timestamp"),
    "duplicate_channels": (with_(channels=["a", "a"], values=[[1.0, 2.0]]), "duplicate_channels"),
}


def test_contract_example_parses_with_null_as_missing() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    assert window.channels == ("temperature", "vibration")
    assert window.values.dtype == np.float64 and window.values.shape == (3, 2)
    assert np.isnan(window.values[1, 1]) and window.values[0, 0] == 20.1
    assert window.start == datetime(2026, 11, 24, 3, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 24, 3, 0, 2, tzinfo=UTC)
    SensorWindow.model_validate_json(CONTRACT_EXAMPLE)


def test_unknown_fields_are_accepted_ignored_for_scoring_and_passed_through() -> None:
    """Contract §3.1, tolerant reader: a producer that adds a field breaks nothing."""
    added = {"site": "plant-3", "meta": {"fw": [1, 2], "ok": True}, "note": None}
    window = decode_window(with_(**added))
    assert window.extra == added
    assert window.values.shape == (3, 2)  # scoring sees the same window as without them
    assert decode_window(CONTRACT_EXAMPLE).extra is None
    SensorWindow.model_validate_json(with_(**added))
    corrected = encode_corrected(
        window, window.values, [], is_anomaly=False, score=1.0, model=MODEL, source=SOURCE
    )
    doc = orjson.loads(corrected)
    assert {k: doc[k] for k in added} == added
    CorrectedWindow.model_validate_json(corrected)


def test_an_unknown_field_named_like_an_output_field_does_not_replace_it() -> None:
    window = decode_window(with_(score="from the producer", source="plc-7", site="x"))
    doc = orjson.loads(
        encode_corrected(
            window, window.values, [], is_anomaly=True, score=2.5, model=MODEL, source=SOURCE
        )
    )
    assert doc["score"] == 2.5 and doc["source"]["offset"] == 7
    assert doc["site"] == "x"


def test_a_schema_version_other_than_1_is_still_dead_lettered_with_extra_fields() -> None:
    assert reject(with_(schema_version=2, site="x")).error_class == "wrong_version"


def test_start_with_an_offset_is_converted_to_utc() -> None:
    window = decode_window(with_(start="2026-11-24T05:00:00+02:00"))
    assert window.start == datetime(2026, 11, 24, 3, tzinfo=UTC)
    assert window.start.tzinfo is UTC


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_each_bad_input_gets_its_class_and_a_one_line_reason(kind: str) -> None:
    raw, error_class = BAD_INPUTS[kind]
    error = reject(raw, max_bytes=len(CONTRACT_EXAMPLE) + 50)
    assert error.error_class == error_class
    assert "\n" not in error.reason
    assert 0 < len(error.reason) <= 300


def test_every_kind_of_bad_input_has_a_distinct_reason() -> None:
    reasons = {
        kind: reject(raw, len(CONTRACT_EXAMPLE) + 50).reason
        for kind, (raw, _) in BAD_INPUTS.items()
    }
    assert len(set(reasons.values())) == len(reasons), reasons


def test_nan_reason_names_the_reading_and_the_remedy() -> None:
    error = reject(CONTRACT_EXAMPLE.replace(b"0.03", b"NaN"))
    assert error.reason == "values[2][1]: NaN is not allowed; use null for a missing reading"


def test_overflowing_number_is_non_finite_and_located() -> None:
    error = reject(CONTRACT_EXAMPLE.replace(b"20.2, null", b"20.2, 1e999"))
    assert error.error_class == "non_finite" and error.reason.startswith("values[1][1]: 1e999")


def test_bool_and_string_readings_are_located() -> None:
    assert reject(with_(values=[[1.0, 2.0], [None, False]])).reason.startswith(
        "values[1][1]: false is a boolean"
    )
    assert reject(with_(values=[["x", 2.0]])).reason.startswith("values[0][0]: 'x' is a string")


@pytest.mark.parametrize("n_channels", [2, NARROW_CHANNELS + 1])
def test_bad_cells_get_the_same_reason_on_narrow_and_wide_windows(n_channels: int) -> None:
    """Up to NARROW_CHANNELS channels a flat type check runs instead of pydantic's."""
    names = [f"c{i}" for i in range(n_channels)]
    for cell, reason in [(True, "true is a boolean"), ("x", "'x' is a string"), ([1.0], "nested")]:
        row = [1.0] * (n_channels - 1) + [cell]
        error = reject(with_(channels=names, values=[[0.5] * n_channels, row]))
        assert error.reason.startswith(f"values[1][{n_channels - 1}]") and reason in error.reason


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, NARROW_CHANNELS + 3).flatmap(
        lambda c: st.lists(
            st.lists(
                st.none()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.integers(-(2**63), 2**63 - 1),
                min_size=c,
                max_size=c,
            ),
            min_size=1,
            max_size=5,
        )
    )
)
def test_narrow_and_wide_readings_decode_alike(rows: list[list[float | int | None]]) -> None:
    """Both paths give the float64 array numpy would (None -> NaN), ints included."""
    names = [f"c{i}" for i in range(len(rows[0]))]
    values = decode_window(with_(channels=names, values=rows)).values
    expected = np.array([[np.nan if c is None else float(c) for c in r] for r in rows])
    np.testing.assert_array_equal(values, expected)
    assert values.dtype == np.float64 and values.shape == expected.shape


def test_an_integer_beyond_float_range_is_located_on_the_narrow_path() -> None:
    with pytest.raises(InvalidMessage) as info:  # orjson itself refuses such integers
        schemas_messages._values([[1.0], [10**400]], 1)
    error = info.value
    assert error.error_class == "non_finite" and error.reason.startswith("values[1][0]")


def test_nan_inside_an_otherwise_broken_document_is_not_json() -> None:
    assert reject(b'{"values": [[NaN]]').error_class == "not_json"


def test_too_many_rows_is_too_large_even_under_the_byte_limit() -> None:
    error = reject(with_(channels=["a"], values=[[None]] * (MAX_STEPS + 1)))
    assert error.error_class == "too_large" and "rows" in error.reason


def test_size_is_checked_before_parsing() -> None:
    error = reject(b"\xff" * 2000, max_bytes=1000)
    assert error.error_class == "too_large"


def test_a_start_that_overflows_in_utc_is_a_bad_timestamp() -> None:
    assert reject(with_(start="0001-01-01T00:00:00+01:00")).error_class == "bad_timestamp"


@pytest.mark.parametrize(
    "kind", sorted(set(BAD_INPUTS) - {"too_many_bytes", "end_beyond_year_9999", "not_json"})
)
def test_pydantic_model_rejects_what_the_hot_path_rejects(kind: str) -> None:
    """The exported JSON Schema's model and the worker's decoder apply the same rules."""
    with pytest.raises((pydantic.ValidationError, ValueError)):
        SensorWindow.model_validate_json(BAD_INPUTS[kind][0])


def test_alignment_selects_and_reorders_the_models_channels() -> None:
    window = decode_window(with_(channels=["x", "a", "b"], values=[[1.0, 2.0, 3.0]] * 4))
    aligned = align_to_model(window, ["b", "a"], min_length=4)
    assert aligned.tolist() == [[3.0, 2.0]] * 4
    assert reject_align(window, ["a", "zz"], 1).error_class == "channels_mismatch"
    assert reject_align(window, ["a"], 5).error_class == "too_short"
    assert reject_align(window, ["zz"], 5).error_class == "channels_mismatch"


def reject_align(window: Any, channels: list[str], min_length: int) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        align_to_model(window, channels, min_length)
    return info.value


def test_merge_with_extra_channels_keeps_untouched_values_bit_identical() -> None:
    window = decode_window(with_(channels=["x", "a"], values=[[0.1, 0.2], [0.3, None]]))
    replaced = np.array([[False], [True]])
    corrected_model = np.array([[0.2], [9.0]])
    values, pairs = merge_corrected(window, ["a"], corrected_model, replaced)
    assert pairs == [(1, 1)]
    assert values[0, 0] == 0.1 and values[0, 1] == 0.2 and values[1, 0] == 0.3
    assert values[1, 1] == 9.0


def test_merge_ignores_the_models_rounding_of_untouched_values() -> None:
    """A float32 reconstruction must not leak into readings that were not replaced."""
    window = decode_window(with_(channels=["a", "b"], values=[[0.1, 0.7], [None, 1 / 3]]))
    replaced = np.isnan(window.values)
    corrected_model = np.nan_to_num(window.values, nan=5.0).astype(np.float32)
    values, pairs = merge_corrected(window, ["a", "b"], corrected_model, replaced)
    assert values.dtype == np.float64
    kept = ~replaced
    assert values[kept].tobytes() == window.values[kept].tobytes()
    assert pairs == [(1, 0)] and values[1, 0] == 5.0


@pytest.mark.parametrize("model_channels", [["temperature", "vibration"], ["vibration"]])
def test_merge_with_nothing_replaced_keeps_the_input(model_channels: list[str]) -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    n = len(model_channels)
    replaced = np.zeros((3, n), dtype=bool)
    values, pairs = merge_corrected(window, model_channels, np.full((3, n), 7.0), replaced)
    assert pairs == [] and values.tobytes() == window.values.tobytes()


def test_corrected_window_validates_and_nan_score_becomes_null() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    corrected = encode_corrected(
        window,
        np.nan_to_num(window.values),
        [(1, 1)],
        is_anomaly=True,
        score=float("nan"),
        model=MODEL,
        source=SOURCE,
    )
    parsed = CorrectedWindow.model_validate_json(corrected)
    assert parsed.score is None and parsed.corrected == [(1, 1)]
    assert parsed.source == SOURCE and parsed.model == MODEL
    assert orjson.loads(corrected)["start"] == "2026-11-24T03:00:00.000Z"


def _event(window: Any, version: str = "3") -> bytes:
    return encode_event(
        window,
        model=ModelRef(name="m", version=version),
        source=SOURCE,
        score=9.0,
        threshold=3.0,
        severity="high",
        channel_scores={"temperature": 1.0, "vibration": float("nan")},
        anomalous_points=[
            {
                "index": 2,
                "timestamp": point_timestamp(window, 2),
                "channel": "temperature",
                "value": 20.2,
                "expected": 20.0,
                "score": 12.0,
            }
        ],
        detected_at=datetime(2026, 11, 24, 3, 0, 5, tzinfo=UTC),
    )


def test_event_validates_with_end_and_point_timestamps_from_the_interval() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    event = AnomalyEvent.model_validate_json(_event(window))
    assert event.end == datetime(2026, 11, 24, 3, 0, 2, tzinfo=UTC)
    assert event.anomalous_points[0].timestamp == event.end
    assert event.channel_scores["vibration"] is None
    assert orjson.loads(_event(window))["end"] == "2026-11-24T03:00:02.000Z"


def test_event_id_is_stable_per_window_and_version() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    first = orjson.loads(_event(window))["event_id"]
    assert first == orjson.loads(_event(decode_window(CONTRACT_EXAMPLE)))["event_id"]
    assert first == make_event_id(window.window_id, "m", "3")
    assert orjson.loads(_event(window, version="4"))["event_id"] != first
    assert make_event_id("other-window", "m", "3") != first


def test_encode_window_round_trips_through_decode_with_nan_as_null() -> None:
    values = np.array([[1.5, np.nan], [2.5, 3.5]])
    raw = encode_window("w", "s", datetime(2026, 1, 1, tzinfo=UTC), 500, ["a", "b"], values)
    assert b"null" in raw
    window = decode_window(raw)
    np.testing.assert_array_equal(window.values, values)
    SensorWindow.model_validate_json(raw)


def test_severity_grows_with_the_excess_in_spreads() -> None:
    scores = (1.5, 3.0, 6.0, 10.0)
    assert [severity(s, 1.0, 1.0) for s in scores] == ["low", "medium", "high", "critical"]
    assert severity(3.0, 1.0, 2.0) == "medium"


def test_dead_letter_headers_carry_class_reason_and_source() -> None:
    headers = dict(dead_letter_headers("non_finite", "values[0][0]: NaN é", "in", 2, 41))
    assert headers == {
        "vaewatch.error.class": b"non_finite",
        "vaewatch.error.reason": "values[0][0]: NaN é".encode(),
        "vaewatch.source.topic": b"in",
        "vaewatch.source.partition": b"2",
        "vaewatch.source.offset": b"41",
    }


def _dumps(doc: object) -> bytes:
    """stdlib json: writes integers beyond 64 bits and Infinity, which orjson refuses to."""
    return json.dumps(doc).encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _assert_accepted_window_can_be_published(raw: bytes) -> None:
    """Anything decode accepts must survive the rest of the worker's path without crashing."""
    try:
        window = decode_window(raw)
    except InvalidMessage as exc:
        assert "\n" not in exc.reason and len(exc.reason) <= 300
        dead_letter_headers(exc.error_class, exc.reason, "t", 0, 0)
        return
    replaced = np.isnan(window.values)
    values, pairs = merge_corrected(window, window.channels, np.zeros_like(window.values), replaced)
    corrected = encode_corrected(
        window, values, pairs, is_anomaly=False, score=1.0, model=MODEL, source=SOURCE
    )
    CorrectedWindow.model_validate_json(corrected)
    out = orjson.loads(corrected)
    for key, value in (window.extra or {}).items():
        if key not in ("corrected", "is_anomaly", "score", "model", "source"):
            assert out[key] == value, f"unknown field {key!r} not passed through"
    AnomalyEvent.model_validate_json(_event_for(window))


def _event_for(window: Any) -> bytes:
    return encode_event(
        window,
        model=MODEL,
        source=SOURCE,
        score=2.0,
        threshold=1.0,
        severity="medium",
        channel_scores=dict.fromkeys(window.channels, 1.0),
        anomalous_points=[],
        detected_at=window.end,
    )


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | json_values.map(_dumps))
def test_decode_never_fails_with_anything_but_invalid_message(raw: bytes) -> None:
    _assert_accepted_window_can_be_published(raw)


@st.composite
def _maybe_junk(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Mostly the valid value, about one time in ten arbitrary JSON in its place."""
    return draw(json_values) if draw(st.integers(0, 9)) == 9 else draw(valid)


_OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)


@st.composite
def near_valid_windows(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed windows with edge-case fields (extreme times, huge intervals, odd cells)."""
    n_channels = draw(st.integers(1, 3))
    extra = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2))
    reading = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-9, 9)
    row = st.lists(reading, min_size=n_channels, max_size=n_channels)
    return {
        **extra,  # unknown fields (tolerant reader); the known ones below win a name clash
        "schema_version": draw(_maybe_junk(st.just(1))),
        "window_id": draw(_maybe_junk(st.text(min_size=1, max_size=8))),
        "series_id": draw(st.text(min_size=1, max_size=8)),
        "start": draw(
            _maybe_junk(
                st.datetimes(timezones=_OFFSETS).map(datetime.isoformat)
                | st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00"])
            )
        ),
        "interval_ms": draw(
            _maybe_junk(st.integers(1, 10**6) | st.integers(-5, 2**64) | st.just(2**62))
        ),
        "channels": draw(
            st.lists(
                st.text(min_size=1, max_size=3),
                min_size=n_channels,
                max_size=n_channels,
                unique=True,
            )
        ),
        "values": draw(_maybe_junk(st.lists(_maybe_junk(row), min_size=1, max_size=4))),
    }


@settings(max_examples=200, deadline=None)
@given(near_valid_windows().map(_dumps))
def test_near_valid_windows_are_accepted_whole_or_rejected_cleanly(raw: bytes) -> None:
    _assert_accepted_window_can_be_published(raw)
