"""The multi-scale smoothed score: triangular kernels, standardised scales, their max, and
that stream, backfill, calibration, the manifest and the scoring process agree on it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modelstore.artifact import load_artifact, save_artifact
from tests.unit.test_smoothing import naive_trailing
from tests.unit.test_vae_core import WINDOW, clean_signal, trained  # noqa: F401
from training.job import TrainOptions, smoothing_scales
from vaecore import Detector, PointScores, Thresholds
from vaecore.calibration import calibrate, threshold
from vaecore.smoothing import MAX_SPAN, Scale, ScoreHistory, SeriesLink, Smoother, centred, trailing
from worker.scorer_wire import detector_from, detector_message

pytestmark = pytest.mark.unit

TWO_SCALES = (Scale(5, 2, center=0.2, spread=0.5), Scale(12, 2, center=0.4, spread=0.1))


def noisy(n: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).random(n)
    raw[[i for i in (7, 90, 91, 92, 250) if i < n]] = np.nan
    return raw


@pytest.mark.parametrize("box", [1, 2, 5, 32])
def test_a_triangular_scale_is_the_rolling_mean_applied_twice(box: int) -> None:
    raw = noisy(300, box)
    twice = naive_trailing(naive_trailing(raw, box), box)
    np.testing.assert_allclose(Scale(box, 2).smooth(raw), twice, rtol=1e-12)
    assert Scale(box, 2).span == 2 * box - 1


def test_away_from_gaps_the_kernel_is_a_triangle() -> None:
    box = 6
    raw = np.random.default_rng(1).random(200)
    weights = np.convolve(np.ones(box), np.ones(box)) / box**2  # 1, 2, .., 6, .., 2, 1 over 36
    expected = np.convolve(raw, weights)[: len(raw)]
    np.testing.assert_allclose(Scale(box, 2).smooth(raw)[20:], expected[20:], rtol=1e-12)


@pytest.mark.parametrize("k", [1, 4, 64])
def test_one_plain_scale_is_the_old_rolling_mean_bit_for_bit(k: int) -> None:
    raw, tail = noisy(300, k), noisy(80, k + 1)
    one = Smoother((Scale(k),))
    assert np.array_equal(one.trailing(raw, tail), trailing(raw, k, tail), equal_nan=True)
    assert np.array_equal(one.centred(raw), centred(raw, k), equal_nan=True)


def test_the_score_is_the_larger_standardised_scale() -> None:
    raw = noisy(400, 3)
    short, long = TWO_SCALES
    z_short = (short.smooth(raw) - 0.2) / 0.5
    z_long = (long.smooth(raw) - 0.4) / 0.1
    np.testing.assert_allclose(Smoother(TWO_SCALES).trailing(raw), np.fmax(z_short, z_long))
    only_short = np.full(400, np.nan)
    only_short[:50] = raw[:50]  # after step 50 nothing is observed: every scale runs dry
    score = Smoother(TWO_SCALES).trailing(only_short)
    assert np.isfinite(score[:60]).all() and np.isnan(score[-1])


def stream(smoother: Smoother, raw: np.ndarray, cuts: list[tuple[int, int]]) -> list[np.ndarray]:
    history, out = ScoreHistory(), []
    for lo, hi in cuts:
        link = SeriesLink("s", lo, hi)
        tail = history.before(link, smoother.span)
        history.record(link, tail, raw[lo:hi], smoother.span)
        out.append(smoother.trailing(raw[lo:hi], tail))
    return out


def test_streamed_pieces_sliding_windows_and_redeliveries_equal_the_whole_series() -> None:
    smoother = Smoother(TWO_SCALES)
    raw = noisy(600, 5)
    whole = smoother.trailing(raw)
    tiles = [(lo, min(lo + 37, 600)) for lo in range(0, 600, 37)]
    np.testing.assert_allclose(np.concatenate(stream(smoother, raw, tiles)), whole, rtol=1e-6)
    sliding = [(lo, lo + 64) for lo in range(0, 600 - 64, 8)]
    sliding.append(sliding[-1])  # a redelivery of the newest window
    for (lo, hi), piece in zip(sliding, stream(smoother, raw, sliding), strict=True):
        np.testing.assert_allclose(piece, whole[lo:hi], rtol=1e-6)


def test_a_centred_triangle_puts_a_pulse_where_it_happened() -> None:
    raw = np.zeros(400)
    raw[200:210] = 10.0
    for scale in (Scale(16, 2), Scale(40, 2)):
        view = Smoother((scale,)).centred(raw)
        assert int(np.argmax(view)) in (204, 205)
        peak = int(np.argmax(Smoother((scale,)).trailing(raw)))
        assert peak - int(np.argmax(view)) == pytest.approx(scale.lead, abs=1)


def test_calibration_puts_each_scale_in_units_of_its_own_threshold(trained: Detector) -> None:  # noqa: F811
    detector = replace(trained, stride=WINDOW, smoothing=16, scales=(Scale(8, 2), Scale(16, 2)))
    parts = [clean_signal(900, seed=s) for s in (11, 12)]
    calibrated = calibrate(detector, parts, risk=1e-2, method="quantile")
    raws = [p.raw_step for p in detector.point_scores(parts)]
    for scale in calibrated.scales:
        values = np.concatenate([replace(scale, center=0.0, spread=1.0).smooth(r) for r in raws])
        median, own_threshold = np.median(values), threshold(values, 1e-2, "quantile")
        assert scale.center == pytest.approx(median)
        assert scale.spread == pytest.approx(own_threshold - median)
        assert np.mean(scale.standardise(values) > 1.0) <= 1e-2 + 1e-9  # 1.0 = its threshold
    steps = np.concatenate([s.step for s in calibrated.score(parts)])
    assert np.mean(steps > calibrated.active_thresholds.window) <= 1e-2 + 1e-9
    assert calibrated.active_thresholds.window >= 1.0  # the max: at least either scale's own


def test_scales_travel_in_the_manifest_and_to_the_scoring_process(
    trained: Detector,  # noqa: F811
    tmp_path: Path,
) -> None:
    new = replace(trained, stride=WINDOW, smoothing=12, scales=TWO_SCALES)
    new = new.with_thresholds(Thresholds(window=2.0, point=np.array([3.0, 4.0, 5.0])))
    save_artifact(new, tmp_path / "m", name="toy", version="1", training_data={}, metrics={})
    loaded = load_artifact(tmp_path / "m", device="cpu")
    assert loaded.scales == TWO_SCALES
    series = clean_signal(300, seed=8)
    assert np.array_equal(new.score([series])[0].step, loaded.score([series])[0].step)
    header, arrays = detector_message(new)
    assert detector_from(json.loads(json.dumps(header)), arrays).scales == TWO_SCALES


def test_a_kernel_longer_than_a_series_history_is_refused(trained: Detector) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="at most 4096"):
        replace(trained, smoothing=64, scales=(Scale(32, 2), Scale(2100, 2)))


def test_training_picks_one_and_two_periods_unless_asked_for_one_mean() -> None:
    assert smoothing_scales(TrainOptions(), 64) == (Scale(32, 2), Scale(64, 2))
    assert smoothing_scales(TrainOptions(smoothing_kernel="mean"), 64) == ()
    assert smoothing_scales(TrainOptions(), 1) == ()
    longest = smoothing_scales(TrainOptions(), 4000)
    assert max(s.span for s in longest) <= MAX_SPAN


def test_a_detector_with_scales_streams_what_its_backfill_computes(trained: Detector) -> None:  # noqa: F811
    detector = replace(trained, stride=WINDOW, smoothing=24, scales=TWO_SCALES)
    series = clean_signal(WINDOW * 12, seed=6)
    series[300:340, 1] += 4.0  # an incident across a window boundary
    [whole] = detector.score([series])
    expected = detector.smoother.trailing(whole.raw_step)
    history, cut = ScoreHistory(), 2 * WINDOW
    for lo in range(0, len(series), cut):
        link = SeriesLink("s", lo, lo + cut)
        [window] = detector.score([series[lo : lo + cut]], [link], history)
        # float32 network outputs differ in the last bits between a 128-step window and the
        # whole series (different kernels per shape); spread 0.1 scales that by 10
        np.testing.assert_allclose(window.step, expected[lo : lo + cut], rtol=1e-4, atol=1e-5)
        top = np.nanmax(expected[lo : lo + cut])
        assert window.score == pytest.approx(top, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("scales", [(), TWO_SCALES])
def test_a_batch_is_smoothed_exactly_as_window_by_window(
    trained: Detector,  # noqa: F811
    scales: tuple[Scale, ...],
) -> None:
    """The kernels run on a whole batch at once; every number is the one a window-by-window
    pass gives: series repeated within a batch, sliding and redelivered windows, gaps,
    missing steps, two window lengths, windows without a link."""
    detector = replace(trained, smoothing=12, scales=scales)
    rng = np.random.default_rng(21)
    spans: list[tuple[str | None, int, int]] = [("a", 0, 128), ("b", 0, 128), ("a", 128, 256)]
    spans += [("a", 192, 320), ("a", 192, 320)]
    spans += [("c", 0, 64), ("b", 500, 628), ("c", 64, 128), (None, 0, 128)]
    raws = [rng.random(hi - lo) for _, lo, hi in spans]
    raws[1][5:9] = np.nan
    raws[6][:] = np.nan
    empty = np.empty(0)
    points = [PointScores(empty, raw, empty, empty, empty, empty) for raw in raws]
    links = [None if key is None else SeriesLink(key, lo, hi) for key, lo, hi in spans]
    batched = detector.window_scores(points, links, ScoreHistory())
    history, smoother = ScoreHistory(), detector.smoother
    for raw, link, got in zip(raws, links, batched, strict=True):
        tail = None
        if link is not None:
            tail = history.before(link, smoother.span)
            history.record(link, tail, raw, smoother.span)
        assert np.array_equal(got.step, smoother.trailing(raw, tail), equal_nan=True)
