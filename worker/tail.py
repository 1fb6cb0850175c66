"""`vaewatch tail`: one line per message of a topic, so a person can see what the worker said.

Each of the worker's outputs gets a line that reads like a log line: when, what, which
series, the numbers that matter. Anything else (the input topic, a topic of another
producer) prints its JSON compactly; bytes that are not JSON print as a short repr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson


def _episode(d: dict[str, Any]) -> str:
    where = f"{d['opened_at']} .. {d['resolved_at'] or d['last_anomalous_at']}"
    top = ",".join(c["channel"] for c in d.get("top_channels", [])[:3])
    return (
        f"episode {d['status']:<8} {d['series_id']}  {where}  severity={d['severity']} "
        f"peak={d['peak_severity']} windows={d['anomalous_windows']} top=[{top}] "
        f"seq={d['seq']} id={d['episode_id'][:8]}"
    )


def _event(d: dict[str, Any]) -> str:
    return (
        f"event    {d['series_id']}  {d['start']} .. {d['end']}  severity={d['severity']} "
        f"score={d['score']:.3g} threshold={d['threshold']:.3g} "
        f"points={len(d['anomalous_points'])} id={d['event_id'][:8]}"
    )


def _corrected(d: dict[str, Any]) -> str:
    flag = "ANOMALY" if d["is_anomaly"] else "normal "
    score = "n/a" if d["score"] is None else f"{d['score']:.3g}"
    return (
        f"window   {d['series_id']}  {d['start']}  {flag} score={score} "
        f"replaced={len(d['corrected'])} rows={len(d['values'])}"
    )


def _kind(d: dict[str, Any]) -> Callable[[dict[str, Any]], str] | None:
    if "episode_id" in d and "status" in d:
        return _episode
    if "event_id" in d and "anomalous_points" in d:
        return _event
    if "corrected" in d and "is_anomaly" in d:
        return _corrected
    return None


def format_line(value: bytes | None, raw_json: bool = False) -> str:
    """One line for one message value (None: a tombstone)."""
    if value is None:
        return "(tombstone)"
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"(not JSON, {len(value)} bytes) {value[:80]!r}"
    if raw_json or not isinstance(doc, dict):
        return orjson.dumps(doc).decode()
    kind = _kind(doc)
    try:
        return kind(doc) if kind is not None else orjson.dumps(doc).decode()
    except (KeyError, TypeError, ValueError):  # shaped like ours, but not quite: show it all
        return orjson.dumps(doc).decode()
