"""`vaewatch schemas export`: the committed JSON Schemas are exactly what the code exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.cli import DEFAULT_DIR, EXPORTED, render_schemas
from vaewatch.cli import main

pytestmark = pytest.mark.unit

EXPECTED_FILES = {
    "sensor-window.schema.json",
    "anomaly-event.schema.json",
    "alert-episode.schema.json",
    "corrected-window.schema.json",
    "model-manifest.schema.json",
}


def test_committed_json_schemas_match_a_fresh_export() -> None:
    for name, text in render_schemas().items():
        committed = DEFAULT_DIR / name
        assert committed.is_file(), f"{committed} is missing: run `make schemas`"
        assert committed.read_text(encoding="utf-8") == text, f"{name} drifted: run `make schemas`"


def test_export_writes_one_stable_file_per_format(tmp_path: Path) -> None:
    assert main(["schemas", "export", "--out", str(tmp_path / "out")]) == 0
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert set(written) == EXPECTED_FILES == set(EXPORTED)
    for text in written.values():
        schema = json.loads(text)
        assert text == json.dumps(schema, indent=2, sort_keys=True) + "\n"
        assert schema["$schema"].endswith("2020-12/schema")


def test_sensor_window_schema_tells_downstream_the_rules() -> None:
    schema = json.loads(render_schemas()["sensor-window.schema.json"])
    assert schema["additionalProperties"] is True  # tolerant reader, contract §3.1
    assert "passed" in schema["description"] and "through" in schema["description"]
    assert schema["properties"]["schema_version"]["const"] == 1
    assert schema["properties"]["start"]["format"] == "date-time"
    assert set(schema["required"]) == {
        "schema_version",
        "window_id",
        "series_id",
        "start",
        "interval_ms",
        "channels",
        "values",
    }


def test_corrected_window_schema_allows_the_passed_through_fields() -> None:
    schema = json.loads(render_schemas()["corrected-window.schema.json"])
    assert schema["additionalProperties"] is True
    event = json.loads(render_schemas()["anomaly-event.schema.json"])
    assert event["additionalProperties"] is False


def test_export_without_an_action_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["schemas"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
