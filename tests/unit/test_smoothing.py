"""The alerting score: rolling mean across windows, its centred view, the period finder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modelstore.artifact import load_artifact, save_artifact
from tests.unit.test_vae_core import CHANNELS, WINDOW, clean_signal, trained  # noqa: F401
from training.job import TrainOptions, smoothing_steps, training_period
from vaecore import Detector, Thresholds
from vaecore.period import FALLBACK, autocorrelation, dominant_period, measured_period
from vaecore.smoothing import ScoreHistory, SeriesLink, centred, trailing

pytestmark = pytest.mark.unit


def naive_trailing(raw: np.ndarray, k: int) -> np.ndarray:
    out = []
    for t in range(len(raw)):
        span = raw[max(0, t - k + 1) : t + 1]
        span = span[np.isfinite(span)]
        out.append(span.mean() if span.size else np.nan)
    return np.array(out)


@pytest.mark.parametrize("k", [1, 2, 5, 16, 300])
def test_trailing_is_the_mean_of_the_finite_scores_of_the_last_k_steps(k: int) -> None:
    raw = np.random.default_rng(k).random(200)
    raw[[3, 50, 51, 52]] = np.nan
    np.testing.assert_allclose(trailing(raw, k), naive_trailing(raw, k), rtol=1e-12)


def stream(
    raw: np.ndarray, k: int, cuts: list[tuple[int, int]], history: ScoreHistory
) -> list[np.ndarray]:
    """Each [lo, hi) piece of `raw` through the history, as the worker does with windows."""
    out = []
    for lo, hi in cuts:
        link = SeriesLink("s", lo, hi)
        tail = history.before(link, k)
        history.record(link, tail, raw[lo:hi], k)
        out.append(trailing(raw[lo:hi], k, tail))
    return out


@pytest.mark.parametrize("k", [2, 7, 16, 64])
def test_trailing_carried_across_pieces_equals_trailing_of_the_whole(k: int) -> None:
    raw = np.random.default_rng(0).random(500)
    cuts = [(lo, min(lo + 37, 500)) for lo in range(0, 500, 37)]
    pieces = stream(raw, k, cuts, ScoreHistory())
    np.testing.assert_allclose(np.concatenate(pieces), trailing(raw, k), rtol=1e-6)


@pytest.mark.parametrize("k", [2, 9, 40])
def test_sliding_and_redelivered_windows_get_the_tail_of_the_whole_series(k: int) -> None:
    raw = np.random.default_rng(4).random(400)
    whole = trailing(raw, k)
    history = ScoreHistory()
    cuts = [(lo, lo + 64) for lo in range(0, 400 - 64, 8)]  # sliding: stride 8
    for (lo, hi), piece in zip(cuts, stream(raw, k, cuts, history), strict=True):
        np.testing.assert_allclose(piece, whole[lo:hi], rtol=1e-6)
    [again] = stream(raw, k, [cuts[-1]], history)  # a redelivery of the newest window
    np.testing.assert_allclose(again, whole[cuts[-1][0] : cuts[-1][1]], rtol=1e-6)


@pytest.mark.parametrize("k", [1, 4, 5, 64])
def test_centred_is_trailing_shifted_back_by_half_the_span(k: int) -> None:
    raw = np.random.default_rng(1).random(300)
    lead = (k - 1) // 2
    np.testing.assert_allclose(centred(raw, k)[: 300 - lead], trailing(raw, k)[lead:])
    # the last steps average what exists to their right (a backfill knows no more)
    assert np.isfinite(centred(raw, k)).all()


def test_a_gap_in_the_stream_scores_like_missing_rows_in_a_backfill() -> None:
    raw = np.random.default_rng(3).random(300)
    k = 9
    with_gap = raw.copy()
    with_gap[100:105] = np.nan
    history = ScoreHistory()
    [_, after] = stream(raw, k, [(0, 100), (105, 300)], history)
    np.testing.assert_allclose(after, trailing(with_gap, k)[105:], rtol=1e-6)
    [late] = stream(raw, k, [(900, 950)], history)  # a gap longer than k: afresh
    np.testing.assert_allclose(late, trailing(raw[900:950], k), rtol=1e-6)


def test_a_window_older_than_anything_kept_starts_afresh_and_changes_nothing() -> None:
    history = ScoreHistory()
    stream(np.arange(1000.0), 5, [(0, 500), (500, 1000)], history)
    assert history.before(SeriesLink("s", 10, 60), 5) is None
    history.record(SeriesLink("s", 10, 60), None, np.zeros(50), 5)
    assert history.before(SeriesLink("s", 1000, 1010), 5) is not None


def test_history_keeps_the_most_recent_series_when_full() -> None:
    history = ScoreHistory(max_series=2)
    for key in ("a", "b", "c"):
        history.record(SeriesLink(key, 0, 1), None, np.zeros(1), 2)
    assert len(history) == 2
    assert history.before(SeriesLink("a", 1, 2), 2) is None
    assert history.before(SeriesLink("c", 1, 2), 2) is not None


def test_autocorrelation_matches_the_definition() -> None:
    x = np.random.default_rng(2).standard_normal(257)
    c = x - x.mean()
    direct = np.array([np.dot(c[: len(c) - k], c[k:]) for k in range(20)]) / np.dot(c, c)
    np.testing.assert_allclose(autocorrelation(x, 19), direct, atol=1e-12)


@pytest.mark.parametrize("period", [12, 48, 200])
def test_dominant_period_finds_a_sine_period(period: int) -> None:
    t = np.arange(6000)
    x = np.sin(2 * np.pi * t / period) + 0.1 * np.random.default_rng(period).standard_normal(6000)
    x[100:110] = np.nan  # interpolated, not fatal
    assert abs(dominant_period(x) - period) <= 1


def test_dominant_period_falls_back_without_a_rhythm() -> None:
    assert dominant_period(np.zeros(1000)) == FALLBACK
    assert dominant_period(np.arange(1000.0)) == FALLBACK  # monotone: no local maximum
    assert measured_period(np.zeros(1000)) is None
    assert measured_period(np.arange(1000.0)) is None


def _sine(period: int, n: int = 4000) -> np.ndarray:
    noise = 0.1 * np.random.default_rng(period).standard_normal(n)
    return np.sin(2 * np.pi * np.arange(n) / period) + noise


def test_channels_without_a_period_do_not_vote_on_the_training_period() -> None:
    # Two constant channels (as in SMD) beside one with a 40-step rhythm: TSB-AD's per-channel
    # rule gives 40, 125, 125, whose median is the fallback, not a period of this data.
    rows = np.stack([_sine(40), np.zeros(4000), np.full(4000, 3.0)], axis=1)
    assert training_period([rows]) == 40
    assert training_period([np.stack([_sine(40), _sine(90), np.zeros(4000)], axis=1)]) == 65
    assert training_period([np.zeros((4000, 2))]) is None
    assert smoothing_steps(TrainOptions(window=64), None) == FALLBACK
    assert smoothing_steps(TrainOptions(window=64), 40) == 64
    assert smoothing_steps(TrainOptions(window=64), 90) == 90


def test_tiled_scores_of_a_series_do_not_depend_on_how_it_is_cut(trained: Detector) -> None:  # noqa: F811
    """stride == window: a step's score comes from its own aligned sub-window only."""
    tiled = replace(trained, stride=WINDOW, smoothing=1)
    series = clean_signal(WINDOW * 9 + 23, seed=5)
    [whole] = tiled.score([series])
    cut = 2 * WINDOW
    parts = tiled.score([series[lo : lo + cut] for lo in range(0, WINDOW * 8, cut)])
    streamed = np.concatenate([p.raw_step for p in parts])
    np.testing.assert_allclose(streamed, whole.raw_step[: len(streamed)], rtol=1e-4, atol=1e-5)


def test_streamed_window_scores_equal_the_backfill_of_the_whole_series(trained: Detector) -> None:  # noqa: F811
    """The worker's window score = the max of the backfill's smoothed values it completed."""
    k = 40
    smoothed = replace(trained, stride=WINDOW, smoothing=k)
    series = clean_signal(WINDOW * 12, seed=6)
    series[300:340, 1] += 4.0  # an incident across a window boundary
    [whole] = smoothed.score([series])
    backfill = centred(whole.raw_step, k)
    lead = (k - 1) // 2
    history = ScoreHistory()
    cut = 2 * WINDOW
    for lo in range(0, len(series), cut):
        link = SeriesLink("s", lo, lo + cut)
        [window] = smoothed.score([series[lo : lo + cut]], [link], history)
        np.testing.assert_allclose(
            window.step, trailing(whole.raw_step, k)[lo : lo + cut], rtol=1e-4, atol=1e-6
        )
        if lo > 0:  # the first window of a series also holds means of its first few steps
            completed = backfill[lo - lead : lo + cut - lead]
            assert window.score == pytest.approx(completed.max(), rel=1e-4, abs=1e-6)


def test_a_model_saved_before_smoothing_existed_scores_as_it_did(
    trained: Detector,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A manifest without score_kind/smoothing loads as NLL, unsmoothed, its own stride."""
    old = replace(trained, stride=16, smoothing=1, score_kind="nll")
    old = old.with_thresholds(Thresholds(window=5.0, point=np.array([3.0, 4.0, 5.0])))
    save_artifact(old, tmp_path / "m", name="toy", version="1", training_data={}, metrics={})
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    for field in ("score_kind", "smoothing", "period", "scales"):
        manifest["scoring"].pop(field)
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_artifact(tmp_path / "m", device="cpu")
    assert (loaded.score_kind, loaded.smoothing, loaded.stride) == ("nll", 1, 16)
    assert loaded.scales == ()
    series = clean_signal(300, seed=7)
    [before], [after] = old.score([series]), loaded.score([series])
    assert np.array_equal(before.step, after.step)
    assert before.score == after.score


def test_smoothing_and_score_kind_travel_in_the_manifest(
    trained: Detector,  # noqa: F811
    tmp_path: Path,
) -> None:
    new = replace(trained, stride=WINDOW, smoothing=24, score_kind="error")
    new = new.with_thresholds(Thresholds(window=5.0, point=np.array([3.0, 4.0, 5.0])))
    save_artifact(new, tmp_path / "m", name="toy", version="1", training_data={}, metrics={})
    loaded = load_artifact(tmp_path / "m", device="cpu")
    assert (loaded.score_kind, loaded.smoothing, loaded.stride) == ("error", 24, WINDOW)
    series = clean_signal(300, seed=8)
    assert np.array_equal(new.score([series])[0].step, loaded.score([series])[0].step)


def test_error_scores_are_squared_errors_in_normalised_units(trained: Detector) -> None:  # noqa: F811
    error = replace(trained, stride=WINDOW, score_kind="error")
    series = clean_signal(WINDOW * 2, seed=9)
    [s] = error.score([series])
    z = (series - s.expected) / error.scaler.scale
    np.testing.assert_allclose(s.point, z**2, rtol=1e-6)


@pytest.mark.parametrize("period", [None, 40])
def test_the_manifest_keeps_a_period_or_its_absence(
    trained: Detector,  # noqa: F811
    tmp_path: Path,
    period: int | None,
) -> None:
    """A model of rhythmless data records no period (its smoothing is TSB-AD's 125 steps),
    not the fallback as if it had been measured."""
    detector = replace(trained, period=period, smoothing=FALLBACK if period is None else 64)
    detector = detector.with_thresholds(Thresholds(window=2.0, point=np.array([3.0, 4.0, 5.0])))
    save_artifact(detector, tmp_path / "m", name="toy", version="1", training_data={}, metrics={})
    loaded = load_artifact(tmp_path / "m", device="cpu")
    assert loaded.period == period
    assert loaded.smoothing == detector.smoothing
