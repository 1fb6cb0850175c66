"""Wire formats: valid contract examples parse; every kind of bad input has its own reason."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.cli import DEFAULT_DIR, render_schemas
from schemas.messages import (
    AnomalyEvent,
    CorrectedWindow,
    InvalidMessage,
    ModelRef,
    SensorWindow,
    SourceRef,
    align_to_model,
    decode_window,
    encode_corrected,
    encode_event,
    encode_window,
    make_event_id,
    merge_corrected,
    severity,
)

pytestmark = pytest.mark.unit

CONTRACT_EXAMPLE = b"""{"schema_version": 1,
 "window_id": "pump-17/2026-11-24T03:00:00Z",
 "series_id": "pump-17",
 "start": "2026-11-24T03:00:00Z",
 "interval_ms": 1000,
 "channels": ["temperature", "vibration"],
 "values": [[20.1, 0.02], [20.2, null], [20.2, 0.03]]}"""


def with_(**changes: object) -> bytes:
    doc = orjson.loads(CONTRACT_EXAMPLE)
    doc.update(changes)
    return orjson.dumps({k: v for k, v in doc.items() if v is not _DROP})


_DROP = object()


def test_contract_example_parses_with_null_as_missing() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    assert window.channels == ("temperature", "vibration")
    assert window.values.shape == (3, 2)
    assert np.isnan(window.values[1, 1])
    assert window.start == datetime(2026, 11, 24, 3, tzinfo=UTC)
    SensorWindow.model_validate_json(CONTRACT_EXAMPLE)


BAD_INPUTS = {
    "wrong_shape": with_(values=[[1.0, 2.0], [3.0]]),
    "non_finite": CONTRACT_EXAMPLE.replace(b"20.1", b"NaN"),
    "non_finite_inf": CONTRACT_EXAMPLE.replace(b"20.1", b"1e999"),
    "wrong_type": with_(values=[[1.0, "2.0"]]),
    "wrong_type_bool": with_(values=[[1.0, True]]),
    "too_large": CONTRACT_EXAMPLE + b" " * 100,
    "wrong_version": with_(schema_version=2),
    "missing_field": with_(series_id=_DROP),
    "not_json": b"{not json",
    "not_object": b"[1, 2]",
    "empty": with_(values=[]),
    "bad_timestamp": with_(start="yesterday"),
    "duplicate_channels": with_(channels=["a", "a"], values=[[1.0, 2.0]]),
    "unknown_field": with_(extra=1),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_each_bad_input_gets_its_own_one_line_reason(kind: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        decode_window(BAD_INPUTS[kind], max_bytes=len(CONTRACT_EXAMPLE) + 50)
    assert info.value.error_class == kind.removesuffix("_inf").removesuffix("_bool")
    assert "\n" not in info.value.reason
    assert 0 < len(info.value.reason) <= 300


def test_error_classes_are_distinct_per_kind() -> None:
    classes = {}
    for kind, raw in BAD_INPUTS.items():
        with pytest.raises(InvalidMessage) as info:
            decode_window(raw, max_bytes=len(CONTRACT_EXAMPLE) + 50)
        classes[kind] = info.value.error_class
    base_kinds = {k.split("_inf")[0].split("_bool")[0] for k in BAD_INPUTS}
    assert len(set(classes.values())) == len(base_kinds)


def test_alignment_selects_and_reorders_the_models_channels() -> None:
    window = decode_window(with_(channels=["x", "a", "b"], values=[[1.0, 2.0, 3.0]] * 4))
    aligned = align_to_model(window, ["b", "a"], min_length=4)
    assert aligned.tolist() == [[3.0, 2.0]] * 4
    with pytest.raises(InvalidMessage) as info:
        align_to_model(window, ["a", "zz"], min_length=1)
    assert info.value.error_class == "channels_mismatch"
    with pytest.raises(InvalidMessage) as info:
        align_to_model(window, ["a"], min_length=5)
    assert info.value.error_class == "too_short"


def test_merge_keeps_untouched_values_bit_identical() -> None:
    window = decode_window(with_(channels=["x", "a"], values=[[0.1, 0.2], [0.3, None]]))
    replaced = np.array([[False], [True]])
    corrected_model = np.array([[0.2], [9.0]])
    values, pairs = merge_corrected(window, ["a"], corrected_model, replaced)
    assert pairs == [(1, 1)]
    assert values[0, 0] == 0.1 and values[0, 1] == 0.2 and values[1, 0] == 0.3
    assert values[1, 1] == 9.0


def test_encoders_produce_valid_messages_and_stable_event_ids() -> None:
    window = decode_window(CONTRACT_EXAMPLE)
    model, source = ModelRef(name="m", version="3"), SourceRef(topic="t", partition=0, offset=7)
    corrected = encode_corrected(
        window,
        np.nan_to_num(window.values),
        [(1, 1)],
        is_anomaly=True,
        score=float("nan"),
        model=model,
        source=source,
    )
    parsed = CorrectedWindow.model_validate_json(corrected)
    assert parsed.score is None and parsed.corrected == [(1, 1)]
    event = encode_event(
        window,
        model=model,
        source=source,
        score=9.0,
        threshold=3.0,
        severity="high",
        channel_scores={"temperature": 1.0, "vibration": float("nan")},
        anomalous_points=[
            {
                "index": 0,
                "timestamp": "2026-11-24T03:00:00Z",
                "channel": "temperature",
                "value": 20.1,
                "expected": 20.0,
                "score": 12.0,
            }
        ],
        detected_at=datetime.now(UTC),
    )
    parsed_event = AnomalyEvent.model_validate_json(event)
    assert parsed_event.end == datetime(2026, 11, 24, 3, 0, 2, tzinfo=UTC)
    assert parsed_event.event_id == make_event_id(window.window_id, "m", "3")
    assert make_event_id(window.window_id, "m", "4") != parsed_event.event_id


def test_encode_window_round_trips_through_decode() -> None:
    values = np.array([[1.5, np.nan], [2.5, 3.5]])
    raw = encode_window("w", "s", datetime(2026, 1, 1, tzinfo=UTC), 500, ["a", "b"], values)
    window = decode_window(raw)
    np.testing.assert_array_equal(window.values, values)


def test_severity_grows_with_the_excess() -> None:
    assert [severity(s, 1.0, 1.0) for s in (1.5, 3.0, 6.0, 10.0)] == [
        "low",
        "medium",
        "high",
        "critical",
    ]


def test_committed_json_schemas_match_a_fresh_export() -> None:
    for name, text in render_schemas().items():
        assert (DEFAULT_DIR / name).read_text(encoding="utf-8") == text, (
            f"run `make schemas` ({name})"
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_decode_never_fails_with_anything_but_invalid_message(raw: bytes) -> None:
    try:
        decode_window(raw)
    except InvalidMessage as exc:
        assert "\n" not in exc.reason
