"""Alert episodes: the anomalous windows of one incident on one series, as one alert.

Per-window events page ops once per anomalous window; an incident that spans twenty windows
would page twenty times and never say it is over. An episode *opens*, *updates* when it
gets worse, and *resolves* (Alertmanager's and PagerDuty's lifecycle; Merlion's
`AggregateAlarms` is the nearest detector-side peer). The rules, all in data time (window
timestamps), so a replay of yesterday gives yesterday's episodes:

- **open**: the window is anomalous and at least `open_min_windows` of the series' last
  `open_within_windows` windows (this one included) are anomalous. The episode starts at
  the first of those anomalous windows: its `episode_id`, `opened_at`, `first_event_id`.
- **update**: while open, an anomalous window whose severity ranks above the severity the
  last message carried, or one that comes at least `update_min_interval_s` of data time
  after the last message (and so has more anomalous windows to report).
- **resolve**: `resolve_after_windows` consecutive normal windows (resolved at the end of
  the last of them), or a gap in the series' data longer than `resolve_after_gap_s` before
  the next window (resolved at the end of the last window before the gap), or the series'
  state expiring (`expire`).
- A window that ends no later than the newest one applied (a duplicate, a redelivery, an
  out-of-order window) changes nothing and emits nothing.

Pure: no Kafka, no clocks. `apply` returns message fields (schemas.episodes adds
`schema_version` and `emitted_at`), and every state object round-trips through a plain
dict (`to_dict`/`from_dict`) for the per-series state changelog (`worker.state`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.episodes import iso_ms, make_episode_id

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class EpisodeRules:
    """When an episode opens, updates and resolves (defaults: docs/episodes.md)."""

    open_min_windows: int = 2
    open_within_windows: int = 4
    resolve_after_windows: int = 5
    resolve_after_gap_s: float = 3600.0
    update_min_interval_s: float = 3600.0
    top_channels: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.open_min_windows <= self.open_within_windows:
            raise ValueError(
                f"episode rules: need 1 <= open_min_windows ({self.open_min_windows}) "
                f"<= open_within_windows ({self.open_within_windows})"
            )
        if self.resolve_after_windows < 1:
            raise ValueError("episode rules: resolve_after_windows must be at least 1")
        if self.resolve_after_gap_s <= 0 or self.update_min_interval_s < 0:
            raise ValueError("episode rules: resolve_after_gap_s > 0, update_min_interval_s >= 0")


@dataclass(frozen=True)
class ScoredWindow:
    """What the rules see of one scored window (times in epoch ms, `end_ms` exclusive)."""

    window_id: str
    start_ms: int
    end_ms: int
    is_anomaly: bool
    score: float
    severity: str  # of an anomalous window
    channel_scores: Mapping[str, float | None]
    event_id: str  # of an anomalous window
    model: tuple[str, str]  # (name, version)


@dataclass
class Episode:
    episode_id: str
    opened_at_ms: int
    last_anomalous_at_ms: int
    severity: str
    peak_severity: str
    peak_score: float
    anomalous_windows: int
    first_event_id: str
    last_event_id: str
    models: list[list[str]]  # [name, version] pairs, in the order they scored it
    channel_sums: dict[str, float] = field(default_factory=dict)
    channel_counts: dict[str, int] = field(default_factory=dict)
    seq: int = 0  # of the last message emitted
    emitted_severity: str = "low"  # what the last message said
    emitted_at_ms: int = 0  # data time of the last message
    emitted_windows: int = 0


@dataclass
class SeriesEpisodes:
    """One series' episode state: the open episode and the recent windows' verdicts."""

    applied_end_ms: int | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)  # last windows, oldest first
    normal_run: int = 0
    episode: Episode | None = None

    def to_dict(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)` without its generic deep copy (the changelog snapshots
        every touched series twice a batch): the containers the rules change in place are
        copied; the window marks are never changed once made."""
        ep = self.episode
        return {
            "applied_end_ms": self.applied_end_ms,
            "recent": [dict(r) for r in self.recent],
            "normal_run": self.normal_run,
            "episode": None
            if ep is None
            else {
                **vars(ep),
                "models": [list(m) for m in ep.models],
                "channel_sums": dict(ep.channel_sums),
                "channel_counts": dict(ep.channel_counts),
            },
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SeriesEpisodes:
        episode = doc.get("episode")
        return cls(
            applied_end_ms=doc.get("applied_end_ms"),
            recent=[dict(r) for r in doc.get("recent", [])],
            normal_run=int(doc.get("normal_run", 0)),
            episode=Episode(**episode) if episode else None,
        )


def apply(
    state: SeriesEpisodes, series_id: str, w: ScoredWindow, rules: EpisodeRules
) -> list[dict[str, Any]]:
    """Advance one series by one window; the episode messages it causes, in order."""
    if state.applied_end_ms is not None and w.end_ms <= state.applied_end_ms:
        return []  # duplicate or out of order: scored and corrected, but no episode move
    out: list[dict[str, Any]] = []
    if (
        state.applied_end_ms is not None
        and _gap_s(state.applied_end_ms, w) > rules.resolve_after_gap_s
    ):
        out += _resolve(state, series_id, state.applied_end_ms, rules)
    state.applied_end_ms = w.end_ms
    state.recent = [*state.recent, _mark(w)][-rules.open_within_windows :]
    if state.episode is None:
        out += _maybe_open(state, series_id, w, rules)
    elif w.is_anomaly:
        out += _worsen(state.episode, series_id, w, rules)
    else:
        state.normal_run += 1
        if state.normal_run >= rules.resolve_after_windows:
            out += _resolve(state, series_id, w.end_ms, rules)
    if w.is_anomaly:
        state.normal_run = 0
    return out


def expire(state: SeriesEpisodes, series_id: str, rules: EpisodeRules) -> list[dict[str, Any]]:
    """The series' state is deleted (idle too long): an open episode resolves first."""
    if state.episode is None or state.applied_end_ms is None:
        return []
    return _resolve(state, series_id, state.applied_end_ms, rules)


def _gap_s(last_end_ms: int, w: ScoredWindow) -> float:
    return (w.start_ms - last_end_ms) / 1000.0


def _mark(w: ScoredWindow) -> dict[str, Any]:
    if not w.is_anomaly:
        return {"anomalous": False}
    return {
        "anomalous": True,
        "window_id": w.window_id,
        "start_ms": w.start_ms,
        "end_ms": w.end_ms,
        "event_id": w.event_id,
        "score": w.score,
        "severity": w.severity,
        "channels": _finite(w.channel_scores),
        "model": list(w.model),
    }


def _finite(scores: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items() if v is not None and math.isfinite(v)}


def _maybe_open(
    state: SeriesEpisodes, series_id: str, w: ScoredWindow, rules: EpisodeRules
) -> list[dict[str, Any]]:
    marks = [m for m in state.recent if m["anomalous"]]
    if not w.is_anomaly or len(marks) < rules.open_min_windows:
        return []
    first = marks[0]
    ep = Episode(
        episode_id=make_episode_id(series_id, w.model[0], first["window_id"]),
        opened_at_ms=first["start_ms"],
        last_anomalous_at_ms=first["end_ms"],
        severity=first["severity"],
        peak_severity=first["severity"],
        peak_score=first["score"],
        anomalous_windows=0,
        first_event_id=first["event_id"],
        last_event_id=first["event_id"],
        models=[],
    )
    for m in marks:
        _add(ep, m)
    state.episode = ep
    return [_emit(ep, series_id, "open", w.end_ms, rules)]


def _add(ep: Episode, mark: Mapping[str, Any]) -> None:
    """Count one anomalous window into the episode."""
    ep.anomalous_windows += 1
    ep.last_anomalous_at_ms = max(ep.last_anomalous_at_ms, mark["end_ms"])
    ep.severity = mark["severity"]
    ep.last_event_id = mark["event_id"]
    if mark["score"] > ep.peak_score or ep.anomalous_windows == 1:
        ep.peak_score = mark["score"]
    if SEVERITY_RANK[mark["severity"]] > SEVERITY_RANK[ep.peak_severity]:
        ep.peak_severity = mark["severity"]
    if mark["model"] not in ep.models:
        ep.models.append(mark["model"])
    for channel, score in mark["channels"].items():
        ep.channel_sums[channel] = ep.channel_sums.get(channel, 0.0) + score
        ep.channel_counts[channel] = ep.channel_counts.get(channel, 0) + 1


def _worsen(
    ep: Episode, series_id: str, w: ScoredWindow, rules: EpisodeRules
) -> list[dict[str, Any]]:
    _add(ep, _mark(w))
    rises = SEVERITY_RANK[ep.severity] > SEVERITY_RANK[ep.emitted_severity]
    due = (w.end_ms - ep.emitted_at_ms) / 1000.0 >= rules.update_min_interval_s
    if rises or (due and ep.anomalous_windows > ep.emitted_windows):
        ep.seq += 1
        return [_emit(ep, series_id, "update", w.end_ms, rules)]
    return []


def _resolve(
    state: SeriesEpisodes, series_id: str, at_ms: int, rules: EpisodeRules
) -> list[dict[str, Any]]:
    """Close the open episode; the next one needs anomalous windows of its own."""
    ep = state.episode
    state.episode, state.recent, state.normal_run = None, [], 0
    if ep is None:
        return []
    ep.seq += 1
    return [_fields(ep, series_id, "resolved", resolved_at_ms=at_ms, top=rules.top_channels)]


def _emit(
    ep: Episode, series_id: str, status: str, at_ms: int, rules: EpisodeRules
) -> dict[str, Any]:
    ep.emitted_severity, ep.emitted_at_ms = ep.severity, at_ms
    ep.emitted_windows = ep.anomalous_windows
    return _fields(ep, series_id, status, resolved_at_ms=None, top=rules.top_channels)


def _fields(
    ep: Episode, series_id: str, status: str, *, resolved_at_ms: int | None, top: int
) -> dict[str, Any]:
    return {
        "episode_id": ep.episode_id,
        "series_id": series_id,
        "status": status,
        "seq": ep.seq,
        "opened_at": iso_ms(ep.opened_at_ms),
        "last_anomalous_at": iso_ms(ep.last_anomalous_at_ms),
        "resolved_at": iso_ms(resolved_at_ms) if resolved_at_ms is not None else None,
        "severity": ep.severity,
        "peak_severity": ep.peak_severity,
        "peak_score": ep.peak_score,
        "anomalous_windows": ep.anomalous_windows,
        "top_channels": _top_channels(ep, top),
        "first_event_id": ep.first_event_id,
        "last_event_id": ep.last_event_id,
        "models": [{"name": n, "version": v} for n, v in ep.models],
    }


def _top_channels(ep: Episode, n: int) -> list[dict[str, Any]]:
    means = {c: ep.channel_sums[c] / ep.channel_counts[c] for c in ep.channel_sums}
    ranked = sorted(means.items(), key=lambda cs: (-cs[1], cs[0]))[:n]
    return [{"channel": c, "score": s} for c, s in ranked]
