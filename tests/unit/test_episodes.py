"""Episode rules (worker.episodes): open, update, resolve, redelivery, state round trip."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.episodes import AlertEpisode, encode_episode, make_episode_id
from worker.episodes import EpisodeRules, ScoredWindow, SeriesEpisodes, apply, expire

STEP_MS = 60_000  # one window per minute
RULES = EpisodeRules(
    open_min_windows=2,
    open_within_windows=3,
    resolve_after_windows=3,
    resolve_after_gap_s=3600,
    update_min_interval_s=600,
)


def window(i: int, anomalous: bool, severity: str = "low", score: float = 1.0) -> ScoredWindow:
    return ScoredWindow(
        window_id=f"s/{i}",
        start_ms=i * STEP_MS,
        end_ms=(i + 1) * STEP_MS,
        is_anomaly=anomalous,
        score=score,
        severity=severity,
        channel_scores={"a": score, "b": score / 2, "c": None},
        event_id=f"ev-{i}" if anomalous else "",
        model=("m", "v1"),
    )


def run(flags: str, state: SeriesEpisodes | None = None, start: int = 0) -> list[dict[str, Any]]:
    """`flags`: one char per window, 'x' anomalous, '.' normal."""
    state = state if state is not None else SeriesEpisodes()
    out: list[dict[str, Any]] = []
    for i, f in enumerate(flags, start=start):
        out += apply(state, "s", window(i, f == "x"), RULES)
    return out


def test_three_incidents_give_three_opens_and_three_resolves_with_stable_ids() -> None:
    flags = "...xxx....." + "x.x......" + "xxxxx......"
    msgs = run(flags)
    assert [m["status"] for m in msgs] == ["open", "resolved"] * 3
    ids = [m["episode_id"] for m in msgs]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]
    assert len(set(ids)) == 3
    assert ids[0] == make_episode_id("s", "m", "s/3")
    assert msgs[2]["anomalous_windows"] == 2  # x.x: both counted from the opening window on
    assert msgs == run(flags)  # data time only: the same input gives the same messages


def test_a_lone_anomalous_window_opens_nothing() -> None:
    assert run("...x......x...") == []


def test_open_starts_at_the_first_anomalous_window_of_the_span() -> None:
    (opened,) = run("..x.x")
    assert opened["opened_at"] == "1970-01-01T00:02:00.000Z"
    assert opened["first_event_id"] == "ev-2" and opened["last_event_id"] == "ev-4"
    assert opened["seq"] == 0 and opened["resolved_at"] is None


def test_resolve_after_consecutive_normal_windows_only() -> None:
    msgs = run("xx..x..x...")
    assert [m["status"] for m in msgs] == ["open", "resolved"]
    assert msgs[1]["resolved_at"] == "1970-01-01T00:11:00.000Z"  # end of the 3rd normal one
    assert msgs[1]["anomalous_windows"] == 4 and msgs[1]["seq"] == 1


def test_update_when_severity_rises_not_when_it_stays() -> None:
    state = SeriesEpisodes()
    severities = ["low", "low", "low", "high", "high", "medium", "critical"]
    msgs = []
    for i, sev in enumerate(severities):
        msgs += apply(state, "s", window(i, True, sev, score=float(i)), RULES)
    assert [(m["status"], m["seq"], m["severity"]) for m in msgs] == [
        ("open", 0, "low"),
        ("update", 1, "high"),
        ("update", 2, "critical"),
    ]
    assert msgs[-1]["peak_severity"] == "critical" and msgs[-1]["peak_score"] == 6.0


def test_update_at_most_every_interval_of_data_time() -> None:
    msgs = run("x" * 25)  # 600 s = 10 windows between updates
    assert [(m["status"], m["anomalous_windows"]) for m in msgs] == [
        ("open", 2),
        ("update", 12),
        ("update", 22),
    ]


def test_a_gap_in_the_data_resolves_at_the_last_window_before_it() -> None:
    state = SeriesEpisodes()
    msgs = run("xxx", state)
    msgs += run("x", state, start=100)  # 97 minutes later > 1 hour
    assert [m["status"] for m in msgs] == ["open", "resolved"]
    assert msgs[1]["resolved_at"] == "1970-01-01T00:03:00.000Z"


def test_redelivered_and_out_of_order_windows_move_nothing() -> None:
    state = SeriesEpisodes()
    run("..xx", state)
    before = state.to_dict()
    assert apply(state, "s", window(3, True, "critical"), RULES) == []
    assert apply(state, "s", window(1, True), RULES) == []
    assert state.to_dict() == before


def test_model_swap_keeps_the_episode_and_records_both_versions() -> None:
    state = SeriesEpisodes()
    msgs = run("xx", state)
    w = window(2, True, "high")
    w2 = ScoredWindow(**{**w.__dict__, "model": ("m", "v2")})
    msgs += apply(state, "s", w2, RULES)
    assert msgs[-1]["episode_id"] == msgs[0]["episode_id"]
    assert msgs[-1]["models"] == [{"name": "m", "version": "v1"}, {"name": "m", "version": "v2"}]


def test_state_round_trip_mid_episode_continues_identically() -> None:
    flags = "xxx.x...xx....."
    whole = run(flags)
    state = SeriesEpisodes()
    first = run(flags[:5], state)
    restored = SeriesEpisodes.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert first + run(flags[5:], restored, start=5) == whole


@pytest.mark.parametrize("flags", ["", "x.", "xxx.x", "xx.xxx...."])
def test_state_dict_is_asdicts_and_does_not_follow_the_live_state(flags: str) -> None:
    state = SeriesEpisodes()
    run(flags, state)
    saved = state.to_dict()
    assert saved == dataclasses.asdict(state)
    frozen = orjson.dumps(saved)
    run("xxxx", state, start=len(flags))  # the rules change the live state in place
    assert orjson.dumps(saved) == frozen


def test_expire_resolves_an_open_episode() -> None:
    state = SeriesEpisodes()
    run("xx", state)
    (resolved,) = expire(state, "s", RULES)
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert expire(state, "s", RULES) == []


def test_messages_match_the_exported_schema() -> None:
    msgs = run("xx.x...")
    assert msgs
    for m in msgs:
        doc = orjson.loads(encode_episode(m, datetime(2026, 1, 1, tzinfo=UTC)))
        AlertEpisode.model_validate_json(orjson.dumps(doc))
        assert doc["top_channels"][0] == {"channel": "a", "score": 1.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"open_min_windows": 4, "open_within_windows": 3},
        {"open_min_windows": 0},
        {"resolve_after_windows": 0},
        {"resolve_after_gap_s": 0},
    ],
)
def test_impossible_rules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="episode rules"):
        EpisodeRules(**kwargs)


def test_tail_prints_one_readable_line_per_message() -> None:
    from worker.tail import format_line

    opened, *_ = run("xx......")
    line = format_line(encode_episode(opened, datetime(2026, 1, 1, tzinfo=UTC)))
    assert line.startswith("episode open") and "s " in line and "windows=2" in line
    assert "\n" not in line
    assert format_line(None) == "(tombstone)"
    assert format_line(b"\xff not json").startswith("(not JSON, 10 bytes)")
    assert format_line(b'{"episode_id": "x", "status": "open"}') == (
        '{"episode_id":"x","status":"open"}'  # shaped like ours but incomplete: shown whole
    )
