"""The VAE core: shapes, loss, detection quality on a toy, correction, artifact safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from modelstore.artifact import load_artifact, save_artifact
from vaecore import (
    ChannelScaler,
    ConvVAE,
    Detector,
    FitConfig,
    Thresholds,
    VAEConfig,
    evaluate_loss,
    fit,
    negative_elbo,
    prepare_batch,
    sub_window_starts,
)
from vaecore.device import autocast_for, select_device, to_device
from vwbase.errors import ModelError

pytestmark = pytest.mark.unit

WINDOW = 64
CHANNELS = ("a", "b", "c")


def clean_signal(length: int, seed: int = 0) -> np.ndarray:
    """Three phase-shifted sines with a little noise: (length, 3) float64."""
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    base = np.stack([np.sin(2 * np.pi * t / 32 + p) for p in (0.0, 1.0, 2.0)], axis=1)
    values: np.ndarray = (
        base * np.array([1.0, 2.0, 0.5])
        + np.array([0.0, 5.0, -1.0])
        + 0.05 * rng.standard_normal((length, 3))
    )
    return values


def windows_of(series: np.ndarray, window: int, stride: int) -> np.ndarray:
    return np.stack([series[s : s + window] for s in range(0, len(series) - window + 1, stride)])


@pytest.fixture(scope="module")
def trained() -> Detector:
    series = clean_signal(4000)
    scaler = ChannelScaler.fit(series)
    train = scaler.transform(windows_of(series[:3200], WINDOW, 4))
    val = scaler.transform(windows_of(series[3200:], WINDOW, 16))
    model = ConvVAE(VAEConfig(n_channels=3, window=WINDOW, latent_dim=8, hidden=(16, 32)))
    fit(model, train, val, FitConfig(epochs=30, batch_size=32, lr=2e-3, max_steps=500, patience=30))
    return Detector(model, scaler, CHANNELS, stride=16)


@pytest.mark.parametrize(("window", "channels"), [(64, 1), (128, 8), (128, 38), (256, 3)])
def test_forward_shapes_match_config(window: int, channels: int) -> None:
    model = ConvVAE(VAEConfig(n_channels=channels, window=window, latent_dim=5))
    out = model(torch.randn(4, channels, window))
    assert out.x_mean.shape == (4, channels, window)
    assert out.x_logvar.shape == (4, channels, window)
    assert out.z_mean.shape == (4, 5)
    assert out.z_logvar.shape == (4, 5)


def test_window_not_divisible_by_downsampling_is_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        VAEConfig(n_channels=1, window=100)


def test_decoder_logvar_stays_within_bounds() -> None:
    model = ConvVAE(VAEConfig(n_channels=2, window=64, min_logvar=-3.0, max_logvar=2.0))
    out = model(100 * torch.randn(8, 2, 64))
    assert float(out.x_logvar.detach().min()) >= -3.0
    assert float(out.x_logvar.detach().max()) <= 2.0


def test_masked_points_do_not_change_the_loss() -> None:
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(n_channels=2, window=32, hidden=(8, 8))).eval()
    windows = np.random.default_rng(0).standard_normal((4, 32, 2)).astype(np.float32)
    windows[:, 5:9, 1] = np.nan
    variant = windows.copy()
    losses = []
    for w in (windows, variant):
        encoder_in, target, mask = prepare_batch(w)
        out = model(torch.from_numpy(encoder_in))
        losses.append(
            float(
                negative_elbo(
                    torch.from_numpy(target), torch.from_numpy(mask), out, 1.0
                ).total.detach()
            )
        )
    # now change the *values* under the mask only, keeping the mask identical
    encoder_in, target, mask = prepare_batch(windows)
    out = model(torch.from_numpy(encoder_in))
    poisoned = torch.from_numpy(target).clone()
    poisoned[~torch.from_numpy(mask)] = 1e6
    changed = float(negative_elbo(poisoned, torch.from_numpy(mask), out, 1.0).total.detach())
    assert losses[0] == losses[1] == changed


def test_elbo_decreases_on_a_toy_series() -> None:
    series = clean_signal(1200)
    scaler = ChannelScaler.fit(series)
    train = scaler.transform(windows_of(series, WINDOW, 8))
    model = ConvVAE(VAEConfig(n_channels=3, window=WINDOW, hidden=(8, 16), latent_dim=4))
    history = fit(model, train, None, FitConfig(epochs=8, batch_size=32, lr=3e-3, patience=10))
    losses = [e.train_loss for e in history.epochs]
    assert losses[-1] < losses[0] - 50, losses


def test_training_is_deterministic_for_a_seed() -> None:
    train = np.random.default_rng(1).standard_normal((64, 32, 2)).astype(np.float32)
    weights = []
    for _ in range(2):
        torch.manual_seed(123)
        model = ConvVAE(VAEConfig(n_channels=2, window=32, hidden=(8, 8)))
        fit(model, train, None, FitConfig(epochs=2, batch_size=16, seed=7))
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_injected_spikes_and_level_shift_score_far_above_normal_points(trained: Detector) -> None:
    test = clean_signal(1024, seed=5)
    labels = np.zeros(test.shape, dtype=bool)
    for t, c in [(100, 0), (300, 1), (555, 2), (800, 0)]:
        test[t, c] += 4.0 * (1 + c)
        labels[t, c] = True
    test[900:940, 1] += 3.0  # level shift
    labels[900:940, 1] = True
    [scores] = trained.score([test])
    auc = roc_auc_score(labels.ravel(), scores.point.ravel())
    assert auc > 0.95, auc
    step_labels = labels.any(axis=1)
    assert roc_auc_score(step_labels, scores.step) > 0.95


def test_scores_do_not_depend_on_the_batch(trained: Detector) -> None:
    series = clean_signal(600, seed=9)
    alone = trained.score([series[:WINDOW]])[0]
    together = trained.score([series[100 : 100 + WINDOW], series[:WINDOW], series[200:400]])[1]
    # float32 convolutions may sum in another order for another batch shape (oneDNN picks
    # kernels by shape): differences of ~2e-5 were seen, so equal to 1e-4, not bit-equal
    np.testing.assert_allclose(alone.point, together.point, rtol=1e-4, atol=1e-4)
    sampled = Detector(trained.model, trained.scaler, CHANNELS, n_samples=4, stride=16)
    a = sampled.score([series[:WINDOW]])[0]
    b = sampled.score([series[300 : 300 + WINDOW], series[:WINDOW]])[1]
    np.testing.assert_allclose(a.point, b.point, rtol=1e-4, atol=1e-4)


def test_missing_points_are_not_scored_and_are_always_replaced(trained: Detector) -> None:
    window = clean_signal(WINDOW, seed=3)
    window[10:14, 2] = np.nan
    calibrated = trained.with_thresholds(Thresholds(window=1e9, point=np.full(3, 1e9)))
    [scores] = calibrated.score([window])
    assert np.isnan(scores.point[10:14, 2]).all()
    assert not scores.flagged[10:14, 2].any()
    [fixed] = calibrated.correct([window], [scores])
    assert fixed.replaced[10:14, 2].all()
    assert np.isfinite(fixed.values).all()


def test_correction_keeps_normal_points_bit_identical_and_moves_anomalies_home(
    trained: Detector,
) -> None:
    clean = clean_signal(256, seed=11)
    noisy = clean.copy()
    noisy[[40, 120, 200], [0, 1, 2]] += np.array([5.0, 8.0, 3.0])
    threshold = Thresholds(window=0.0, point=np.full(3, 8.0))
    detector = trained.with_thresholds(threshold)
    [scores] = detector.score([noisy])
    [fixed] = detector.correct([noisy], [scores])
    assert fixed.values.dtype == noisy.dtype
    untouched = ~fixed.replaced
    assert np.array_equal(fixed.values[untouched], noisy[untouched])
    for t, c in [(40, 0), (120, 1), (200, 2)]:
        assert fixed.replaced[t, c]
        assert abs(fixed.values[t, c] - clean[t, c]) < 0.3 * abs(noisy[t, c] - clean[t, c])


def test_sub_windows_cover_every_point() -> None:
    for length in (64, 65, 100, 129, 1000):
        starts = sub_window_starts(length, 64, 16)
        covered = np.zeros(length, dtype=bool)
        for s in starts:
            covered[s : s + 64] = True
        assert covered.all()
        assert starts[-1] == length - 64
    with pytest.raises(ValueError, match="shorter"):
        sub_window_starts(10, 64, 16)


def _saved(trained: Detector, tmp_path: Path) -> Path:
    detector = trained.with_thresholds(Thresholds(window=5.0, point=np.array([3.0, 4.0, 5.0])))
    save_artifact(
        detector, tmp_path / "m", name="toy", version="1", training_data={"rows": 1}, metrics={}
    )
    return tmp_path / "m"


def test_artifact_round_trip_gives_bit_identical_scores(trained: Detector, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    loaded = load_artifact(path, device="cpu")
    windows = [clean_signal(200, seed=2), clean_signal(WINDOW, seed=4)]
    before = trained.with_thresholds(loaded.active_thresholds).score(windows)
    after = loaded.score(windows)
    for x, y in zip(before, after, strict=True):
        assert np.array_equal(x.point, y.point)
        assert x.score == y.score
    assert loaded.version == "1"
    assert loaded.channels == CHANNELS
    assert loaded.manifest is not None
    assert loaded.manifest.library_versions["torch"] == torch.__version__


def test_a_flipped_byte_in_the_weights_is_refused(trained: Detector, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_artifact(path, device="cpu")


def test_a_manifest_for_another_architecture_is_refused(trained: Detector, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["architecture"]["latent_dim"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"do not match the architecture|has shape"):
        load_artifact(path, device="cpu")


def test_an_invalid_manifest_is_refused_in_one_line(trained: Detector, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    (path / "manifest.json").write_text('{"schema_version": 1}')
    with pytest.raises(ModelError) as info:
        load_artifact(path, device="cpu")
    assert "\n" not in str(info.value)


def test_cuda_requested_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto").type == "cpu"
    with pytest.raises(ModelError, match="no CUDA device"):
        select_device("cuda")


def test_cuda_copies_use_pinned_memory_and_non_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_pin(self: torch.Tensor) -> torch.Tensor:
        calls.append("pin")
        return self

    def fake_to(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(f"to non_blocking={kwargs.get('non_blocking')}")
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    to_device(np.zeros((2, 3), np.float32), torch.device("cuda"))
    assert calls == ["pin", "to non_blocking=True"]
    calls.clear()
    to_device(np.zeros((2, 3), np.float32), torch.device("cpu"))
    assert calls == []


def test_autocast_is_a_no_op_on_cpu() -> None:
    with autocast_for(torch.device("cpu")):
        y = torch.ones(2) * 1.5
    assert y.dtype == torch.float32


def _weights_after(steps: int, ema_half_life: float) -> torch.Tensor:
    train = np.random.default_rng(2).standard_normal((64, 32, 2)).astype(np.float32)
    torch.manual_seed(5)
    model = ConvVAE(VAEConfig(n_channels=2, window=32, hidden=(8, 8)))
    cfg = FitConfig(epochs=1, batch_size=16, max_steps=steps, ema_half_life=ema_half_life)
    fit(model, train, None, cfg)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_weight_averaging_keeps_an_ema_that_starts_at_the_first_step() -> None:
    raw_first, raw_last = _weights_after(1, 0.0), _weights_after(4, 0.0)
    # A half-life of a tiny fraction of an epoch forgets at once: the average is the last step.
    torch.testing.assert_close(_weights_after(4, 1e-6), raw_last)
    # A half-life of a million epochs barely moves from where the average started: step 1.
    torch.testing.assert_close(_weights_after(4, 1e6), raw_first, atol=1e-5, rtol=0)
    # One epoch (4 steps here): strictly between the first and the last weights.
    averaged = _weights_after(4, 1.0)
    assert not torch.allclose(averaged, raw_last) and not torch.allclose(averaged, raw_first)


def test_without_validation_early_stopping_judges_the_averaged_weights_it_keeps() -> None:
    train = np.random.default_rng(3).standard_normal((96, 32, 2)).astype(np.float32)
    torch.manual_seed(6)
    model = ConvVAE(VAEConfig(n_channels=2, window=32, hidden=(8, 8)))
    cfg = FitConfig(epochs=6, batch_size=16, lr=3e-3, patience=10, ema_half_life=1.0)
    history = fit(model, train, None, cfg)
    compared = [e.selection_loss for e in history.epochs]
    assert history.best_epoch == 1 + int(np.argmin(compared))
    # The loss that chose the epoch is the kept (averaged) weights' own, not the raw
    # weights' running training loss, which is noisier and belongs to other weights.
    kept_loss = evaluate_loss(model, train)
    assert compared[history.best_epoch - 1] == pytest.approx(kept_loss, rel=1e-5)
    assert kept_loss != pytest.approx(history.epochs[history.best_epoch - 1].train_loss, rel=1e-3)
