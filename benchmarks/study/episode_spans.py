"""Shared by the episode studies: windows with verdicts -> the worker's alert episodes."""
from worker.episodes import EpisodeRules, ScoredWindow, SeriesEpisodes, apply


def episode_spans(flags, starts, length, rules=None):
    """[opened_at, last_anomalous_at] of every episode `worker.episodes.apply` opens on
    windows [start, start + length) with these verdicts (one series, data time = steps)."""
    state, spans = SeriesEpisodes(), []
    rules = rules or EpisodeRules()
    for j, (a, s) in enumerate(zip(flags, starts)):
        w = ScoredWindow(f"w{j}", s, s + length, bool(a), 1.0, "low", {}, f"e{j}", ("m", "1"))
        before = state.episode
        apply(state, "s", w, rules)
        if before is not None and state.episode is None:
            spans.append((before.opened_at_ms, before.last_anomalous_at_ms))
    if state.episode is not None:
        spans.append((state.episode.opened_at_ms, state.episode.last_anomalous_at_ms))
    return spans
