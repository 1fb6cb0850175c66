"""The device path (`vaecore.resident`, the worker's on CUDA) against the host path, on CPU:
the same arithmetic, so the same results to float rounding, the same dtypes and NaNs, and
the same points flagged and replaced (CI has no GPU; the device is then the CPU)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from vaecore import ChannelScaler, ConvVAE, Detector, Thresholds, VAEConfig, resident
from vaecore.detector import Correction, PointScores

WINDOW = 32
CHANNELS = 3


def sines(n: int, length: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None] + rng.integers(0, 500, (n, 1, 1))
    values = np.sin(2 * np.pi * t / 16 + np.arange(CHANNELS)) * [1.0, 3.0, 0.2] + [0, 10, -2]
    return list(values + 0.05 * rng.standard_normal((n, length, CHANNELS)))


def windows_with_trouble() -> list[np.ndarray]:
    """Two lengths (tiled exactly, and with an end-aligned last sub-window), missing points,
    a wholly missing window, spikes, and float32 beside float64 input."""
    windows = sines(12, 64, seed=1) + sines(5, 75, seed=2)
    windows[1][10:14, 0] = np.nan
    windows[2][:, :] = np.nan
    windows[4][20:23, 1:] = np.nan  # steps with one observed channel
    windows[3][40, 1] += 30.0
    windows[13][70, 2] -= 5.0
    windows[14] = windows[14].astype(np.float32)
    return windows


def detector(stride: int, n_samples: int = 0, score_kind: str = "nll") -> Detector:
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(n_channels=CHANNELS, window=WINDOW, latent_dim=4, hidden=(8, 16)))
    calib = np.stack(sines(8, 64, seed=3))
    det = Detector(
        model,
        ChannelScaler.fit(calib),
        ("a", "b", "c"),
        stride=stride,
        n_samples=n_samples,
        score_kind=score_kind,  # type: ignore[arg-type]
        max_batch=7,  # several network passes per call
    )
    points = np.concatenate([p.point for p in det.point_scores(list(calib))])
    return det.with_thresholds(Thresholds(1.0, np.quantile(points, 0.97, axis=0)))


def assert_same(host: object, device: object) -> None:
    """Equal flags, dtypes, shapes and NaNs; numbers equal to 1e-4, as a window's scores in
    another batch (`test_scores_do_not_depend_on_the_batch`: oneDNN picks convolution
    kernels by batch shape, and the two paths send different batches through the network)."""
    for f in fields(host):  # type: ignore[arg-type]
        a, b = getattr(host, f.name), getattr(device, f.name)
        assert a.dtype == b.dtype and a.shape == b.shape, f.name
        if a.dtype == bool:
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f.name)


@pytest.mark.parametrize(
    ("stride", "n_samples", "score_kind"),
    [(WINDOW, 0, "nll"), (WINDOW, 0, "error"), (WINDOW // 2, 2, "nll"), (5, 0, "error")],
)
def test_device_path_gives_the_host_paths_scores_and_corrections(
    stride: int, n_samples: int, score_kind: str
) -> None:
    det = detector(stride, n_samples, score_kind)
    windows = windows_with_trouble()
    host_points, host_fixes = det.stateless(windows, on_device=False)
    points, fixes = det.stateless(windows, on_device=True)
    assert sum(int(p.flagged.sum()) for p in host_points) > 20  # the comparison has teeth
    for hp, p, hc, c in zip(host_points, points, host_fixes, fixes, strict=True):
        assert isinstance(p, PointScores) and isinstance(c, Correction)
        assert_same(hp, p)
        assert_same(hc, c)


def test_points_not_replaced_come_back_bit_identical_and_the_rest_are_refined() -> None:
    det = detector(WINDOW)
    windows = windows_with_trouble()
    points, fixes = det.stateless(windows, on_device=True)
    no_refinement, _ = det.stateless(windows, rounds=0, on_device=True)
    for w, fix in zip(windows, fixes, strict=True):
        kept = ~fix.replaced
        np.testing.assert_array_equal(fix.values[kept], w[kept])
        assert not np.isnan(fix.values).any()
    moved = [
        not np.array_equal(fix.values[fix.replaced], p.expected[fix.replaced].astype(w.dtype))
        for w, p, fix in zip(windows, points, fixes, strict=True)
        if fix.replaced.any()
    ]
    assert any(moved)  # the rounds changed the first reconstruction somewhere
    assert [p.flagged.sum() for p in no_refinement] == [p.flagged.sum() for p in points]


def test_chunks_of_windows_give_the_results_of_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    det = detector(WINDOW)
    windows = windows_with_trouble()
    whole = det.stateless(windows, on_device=True)
    monkeypatch.setattr(resident, "RESIDENT_POINTS", 4 * 64 * CHANNELS)  # 4 windows of 64
    chunked = det.stateless(windows, on_device=True)
    for one, other in zip(whole[0] + whole[1], chunked[0] + chunked[1], strict=True):  # type: ignore[operator]
        assert_same(one, other)


def test_the_device_path_is_chosen_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    det = detector(WINDOW)

    def refuse(*_: object) -> None:
        raise AssertionError("the device path ran on a CPU detector")

    monkeypatch.setattr("vaecore.detector.score_and_correct_on_device", refuse)
    points, fixes = det.stateless(sines(3, 64, seed=5))  # on_device=None: host on a CPU
    assert len(points) == len(fixes) == 3
    assert det.stateless([], on_device=True) == ([], [])
    with pytest.raises(AssertionError, match="device path ran"):
        det.stateless(sines(1, 64, seed=5), on_device=True)


def test_windows_shorter_than_the_model_are_refused_on_the_device_path() -> None:
    det = replace(detector(WINDOW))
    with pytest.raises(ValueError, match="shorter than"):
        det.stateless([np.zeros((WINDOW - 1, CHANNELS))], on_device=True)
