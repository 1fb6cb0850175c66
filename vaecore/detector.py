"""Scoring and correction: the one code path the worker, `score` and `evaluate` share.

Score (An & Cho 2015): the negative log-likelihood of each observed point under the
decoder's Gaussian, averaged over L latent samples, or decoded from the posterior mean when
L = 0. The L noise vectors are drawn once from `sample_seed` and shared by every window, so
a window's score does not depend on the batch it travelled in: stream and backfill agree.

Point score kinds (`score_kind`, recorded in the manifest): "nll" is the negative
log-likelihood above; "error" is the squared reconstruction error in normalised units,
which ignores the decoder's variance: on server metrics the learned per-point variance
widens around a burst and "explains away" the anomaly (docs/quality.md).

The step score is the mean point score over the observed channels; the score the worker
alerts on is its smoothed value (`vaecore.smoothing`): the larger of two standardised
triangular kernels of one and two `smoothing` steps (the series' period) for a model with
`scales`, the rolling mean over `smoothing` steps for one without. A `ScoreHistory` carries
each series' recent raw step scores across its windows.

Windows longer than the model's length are cut into sub-windows every `stride` steps (the
last one aligned to the end); every sub-window of every window in a call goes through the
network in one batched pass, and point scores and reconstructions are averaged over the
sub-windows covering each point. With `stride == window` (the default of new models) a
point's score depends only on its own sub-window, so a series scored as one long array and
the same series streamed in windows of a multiple of the model window agree exactly.

Correction (Donut's MCMC imputation, deterministic variant): flagged and missing points
are replaced by the reconstruction; the corrected window is re-encoded a few times and only
those points are replaced again, so the reconstruction is not dragged by the anomaly it
replaces. Every other point is returned bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import torch

from schemas.manifest import ModelManifest
from vaecore.device import PRECISIONS, autocast_for, select_device, to_device
from vaecore.fit import prepare_batch
from vaecore.network import ConvVAE, gaussian_nll
from vaecore.resident import DeviceModel, GroupResult
from vaecore.resident import score_and_correct as score_and_correct_on_device
from vaecore.scaler import ChannelScaler
from vaecore.smoothing import MAX_SPAN, Scale, ScoreHistory, SeriesLink, Smoother
from vaecore.tiling import overlap_slices
from vaecore.unscored import below_all


@dataclass(frozen=True)
class Thresholds:
    window: float  # on the step score; a window is anomalous when its max step score exceeds it
    point: np.ndarray  # (C,) on the per-point NLL; points above are flagged and corrected
    method: Literal["pot", "quantile"] = "quantile"  # how `window` was calibrated
    target_false_alarm_rate: float = 0.01
    window_spread: float = 1.0  # robust spread of validation step scores (for severity)
    # The rate `window` was fitted for: the target, or 10 / calibration_steps where that is
    # larger (a tail of fewer points is no evidence). None: not recorded (older models).
    fitted_false_alarm_rate: float | None = None
    calibration_steps: int | None = None  # finite step scores `window` was fitted on

    @classmethod
    def never(cls, n_channels: int) -> Thresholds:
        """No calibration yet: nothing is flagged (used to score validation data)."""
        return cls(float("inf"), np.full(n_channels, np.inf))


ScoreKind = Literal["nll", "error"]
SCORE_KINDS: tuple[ScoreKind, ...] = ("nll", "error")


@dataclass(frozen=True)
class PointScores:
    """The stateless part of a window's scores: what the network and the thresholds give,
    independent of the series' history (the worker may compute it in another process)."""

    point: np.ndarray  # (T, C) point score (NLL or squared error); NaN where input was missing
    raw_step: np.ndarray  # (T,) mean over observed channels of `point`; NaN if none observed
    channel: np.ndarray  # (C,) mean over time of `point` per channel
    expected: np.ndarray  # (T, C) reconstruction mean in raw units
    expected_std: np.ndarray  # (T, C) reconstruction standard deviation in raw units
    flagged: np.ndarray  # (T, C) bool: observed points above their channel's point threshold


class Reconstruction(Protocol):
    """What `Detector.correct` needs of a window's scores: `PointScores` or `WindowScores`."""

    @property
    def expected(self) -> np.ndarray: ...
    @property
    def flagged(self) -> np.ndarray: ...


@dataclass(frozen=True)
class WindowScores:
    point: np.ndarray  # (T, C) point score (NLL or squared error); NaN where input was missing
    raw_step: np.ndarray  # (T,) mean over observed channels of `point`; NaN if none observed
    step: np.ndarray  # (T,) rolling mean of raw_step over `smoothing` steps (trailing)
    channel: np.ndarray  # (C,) mean over time of `point` per channel
    score: float  # max of `step` (NaN if nothing was observed)
    expected: np.ndarray  # (T, C) reconstruction mean in raw units
    expected_std: np.ndarray  # (T, C) reconstruction standard deviation in raw units
    is_anomaly: bool  # score > thresholds.window
    flagged: np.ndarray  # (T, C) bool: observed points above their channel's point threshold


@dataclass(frozen=True)
class Correction:
    values: np.ndarray  # (T, C) corrected, raw units, input dtype; untouched points identical
    replaced: np.ndarray  # (T, C) bool: flagged or missing


AGGREGATE_CHUNK = 32  # windows overlap-added at once: (3, 32, T, C) float32 stays in cache


def by_length(windows: Sequence[np.ndarray]) -> dict[int, list[int]]:
    """Window indices grouped by length, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(windows):
        groups.setdefault(len(w), []).append(i)
    return groups


def sub_window_starts(length: int, window: int, stride: int) -> list[int]:
    """0, stride, 2*stride, ... plus a last start aligned to the end, so every point is covered."""
    if length < window:
        raise ValueError(f"length {length} is shorter than the model window {window}")
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@dataclass
class Detector:
    """A trained model plus everything needed to score like every other copy of it."""

    model: ConvVAE
    scaler: ChannelScaler
    channels: tuple[str, ...]
    thresholds: Thresholds | None = None
    n_samples: int = 0
    stride: int | None = None
    score_kind: ScoreKind = "nll"  # point score: "nll" | "error" (see module docstring)
    smoothing: int = 1  # steps of the rolling mean over step scores (the base scale); 1 = none
    scales: tuple[Scale, ...] = ()  # several standardised kernels; () = one mean of `smoothing`
    period: int | None = None  # dominant period of the training data (recorded, not used)
    sample_seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    max_batch: int = 512  # sub-windows per network pass
    precision: str = "auto"  # vaecore.device.autocast_for: auto (bf16 on CUDA) | fp32 | bf16
    name: str = ""
    version: str = ""
    manifest: ModelManifest | None = None

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if len(self.channels) != self.model.cfg.n_channels:
            raise ValueError("channels do not match the model's n_channels")
        if isinstance(self.device, str):
            self.device = select_device(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {PRECISIONS}")
        if self.stride is None:
            self.stride = self.window  # aligned sub-windows: stream == backfill (docstring)
        if self.score_kind not in SCORE_KINDS:
            raise ValueError(f"score_kind must be one of {SCORE_KINDS}")
        if self.smoothing < 1:
            raise ValueError("smoothing must be >= 1")
        self.scales = tuple(self.scales)
        if self.smoother.span > MAX_SPAN:
            raise ValueError(f"smoothing spans {self.smoother.span} steps, at most {MAX_SPAN}")
        self.model.to(self.device).eval()
        gen = torch.Generator().manual_seed(self.sample_seed)
        self._eps = torch.randn(max(self.n_samples, 1), self.model.cfg.latent_dim, generator=gen)

    @property
    def window(self) -> int:
        return self.model.cfg.window

    @property
    def smoother(self) -> Smoother:
        return Smoother(self.scales or (Scale(self.smoothing),))

    @property
    def scores_on_device(self) -> bool:
        """Whether `stateless` keeps every array on the device by default (on CUDA)."""
        return self.device.type == "cuda"

    @property
    def active_thresholds(self) -> Thresholds:
        return self.thresholds or Thresholds.never(len(self.channels))

    def with_thresholds(self, thresholds: Thresholds) -> Detector:
        return replace(self, thresholds=thresholds)

    # --- network passes -------------------------------------------------------------
    def _forward(self, normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, T, C) normalised sub-windows -> point NLL, mean, logvar, each (N, T, C).

        Chunks of `max_batch` go through four stages (host preparation, copy to the device,
        network, copy back), each its own method so the GPU benchmark can time them apart.
        """
        parts = []
        with torch.inference_mode(), autocast_for(self.device, self.precision):
            for i in range(0, len(normalised), self.max_batch):
                x_in, x = self._upload(self._prepare(normalised[i : i + self.max_batch]))
                parts.append(self._download(self._sampled_nll(x_in, x)))
        nll, mean, logvar = (np.concatenate(p) for p in zip(*parts, strict=True))
        return nll, mean, logvar

    def _prepare(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Host side: (B, T, C) normalised -> encoder input and likelihood target, (B, C, T)."""
        encoder_in, target, _ = prepare_batch(chunk)
        return encoder_in, target

    def _upload(self, arrays: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        return to_device(arrays[0], self.device), to_device(arrays[1], self.device)

    def _download(
        self,
        outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, C, T) tensors on the device -> (B, T, C) float32 host arrays."""
        nll, mean, logvar = (t.float().transpose(1, 2).cpu().numpy() for t in outputs)
        return nll, mean, logvar

    def _sampled_nll(
        self, x_in: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.model.encode(x_in)  # (B, Z)
        if self.n_samples == 0:
            mean, x_logvar = self.model.decode(mu)
            return gaussian_nll(x, mean, x_logvar), mean, x_logvar
        eps = self._eps.to(mu.device)
        nll = torch.zeros_like(x)
        means = torch.zeros_like(x)
        logvars = torch.zeros_like(x)
        for e in eps:  # L fixed noise vectors, identical for every window
            mean, x_logvar = self.model.decode(mu + e * torch.exp(0.5 * logvar))
            nll += gaussian_nll(x, mean, x_logvar)
            means += mean
            logvars += x_logvar
        n = float(len(eps))
        return nll / n, means / n, logvars / n

    def _per_point(
        self, windows: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each (T_i, C) raw window -> averaged point NLL, mean and std (raw units).

        Windows of equal length share their sub-window starts, so each length group is cut,
        and its sub-window outputs overlap-added, with whole-array operations (one loop over
        the few starts, none over windows); every group goes through the network in one pass.
        """
        groups = by_length(windows)
        stride = int(self.stride or 1)
        plan = []
        subs = []
        for length, index in groups.items():
            starts = np.asarray(sub_window_starts(length, self.window, stride))
            # normalised before cutting: each point once, not once per covering sub-window
            block = self.scaler.transform(np.stack([windows[i] for i in index]))  # (n, L, C)
            cut = block[:, starts[:, None] + np.arange(self.window)]  # (n, S, W, C)
            subs.append(cut.reshape(-1, self.window, block.shape[2]))
            plan.append((length, index, starts))
        nll, mean, logvar = self._forward(np.concatenate(subs))
        outputs = np.stack([nll, mean, logvar])  # (3, N_sub, W, C)
        results: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [()] * len(windows)  # type: ignore[list-item]
        k = 0
        for length, index, starts in plan:
            for lo in range(0, len(index), AGGREGATE_CHUNK):  # chunks stay in cache
                chunk = index[lo : lo + AGGREGATE_CHUNK]
                n = len(chunk) * len(starts)
                parts = outputs[:, k : k + n].reshape(3, len(chunk), len(starts), self.window, -1)
                for i, result in zip(chunk, self._overlap_add(parts, starts, length), strict=True):
                    results[i] = result
                k += n
        return results

    def _overlap_add(
        self, parts: np.ndarray, starts: np.ndarray, length: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(3, n, S, W, C) sub-window NLL/mean/logvar -> per window (NLL, mean, std), averaged
        over the sub-windows covering each step (`vaecore.tiling.overlap_slices`: tiled, each
        step depends on one sub-window alone)."""
        acc = np.zeros((3, parts.shape[1], length, parts.shape[4]), dtype=np.float32)
        count = np.zeros((length, 1), dtype=np.float32)
        slices = overlap_slices(starts.tolist(), self.window, self.stride == self.window)
        for j, (start, (skip, lo)) in enumerate(zip(starts, slices, strict=True)):
            acc[:, :, lo : start + self.window] += parts[:, :, j, skip:]
            count[lo : start + self.window] += 1
        acc /= count
        expected = self.scaler.inverse_transform(acc[1])  # float64, raw units
        std = np.exp(0.5 * acc[2].astype(np.float64)) * self.scaler.scale
        return [(acc[0, i], expected[i], std[i]) for i in range(parts.shape[1])]

    def _check(self, windows: Sequence[np.ndarray]) -> None:
        for w in windows:
            if w.ndim != 2 or w.shape[1] != len(self.channels):
                raise ValueError(
                    f"window shape {w.shape} does not match {len(self.channels)} channels"
                )
            if len(w) < self.window:
                raise ValueError(f"window of {len(w)} steps is shorter than {self.window}")

    # --- public surface -------------------------------------------------------------
    def score(
        self,
        windows: Sequence[np.ndarray],
        links: Sequence[SeriesLink | None] | None = None,
        history: ScoreHistory | None = None,
    ) -> list[WindowScores]:
        """Score raw windows (T_i >= window, C) with NaN = missing, in one batched pass.

        `links` place each window in its series and `history` carries each series' recent
        raw step scores, so the rolling mean runs on across windows (applied in input order).
        Without them every window is scored as the start of its series.
        The two halves, `point_scores` (stateless) and `window_scores` (the series' history),
        may run apart: the worker computes the first in another process.
        """
        return self.window_scores(self.point_scores(windows), links, history)

    def point_scores(self, windows: Sequence[np.ndarray]) -> list[PointScores]:
        """The stateless half of `score`: the network, point and step scores, flagged points."""
        if not windows:
            return []
        self._check(windows)
        per_point = self._per_point(windows)
        stepwise = self._stepwise(windows, per_point)
        return [
            PointScores(point, raw_step, channel, expected, std, flagged)
            for (point, raw_step, channel, flagged), (_, expected, std) in zip(
                stepwise, per_point, strict=True
            )
        ]

    def window_scores(
        self,
        points: Sequence[PointScores],
        links: Sequence[SeriesLink | None] | None = None,
        history: ScoreHistory | None = None,
    ) -> list[WindowScores]:
        """The stateful half of `score`: the smoothed score (advancing `history` in input
        order), each window's score and its verdict at the window threshold."""
        th = self.active_thresholds
        out = []
        steps = self._smoothed([p.raw_step for p in points], links, history)
        for p, step in zip(points, steps, strict=True):
            finite = np.isfinite(step)
            score = float(np.max(step[finite])) if finite.any() else float("nan")
            out.append(
                WindowScores(
                    point=p.point,
                    raw_step=p.raw_step,
                    step=step,
                    channel=p.channel,
                    score=score,
                    expected=p.expected,
                    expected_std=p.expected_std,
                    is_anomaly=bool(finite.any() and score > th.window),
                    flagged=p.flagged,
                )
            )
        return out

    def _point_scores(self, w: np.ndarray, nll: np.ndarray, expected: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(w)
        if self.score_kind == "error":
            z = (w - expected) / self.scaler.scale
            return np.where(observed, z * z, np.nan)
        return np.where(observed, nll, np.nan)

    def _smoothed(
        self,
        raw_steps: list[np.ndarray],
        links: Sequence[SeriesLink | None] | None,
        history: ScoreHistory | None,
    ) -> list[np.ndarray]:
        """Each window's smoothed steps. The tails come from `history` in input order, so a
        window finds the earlier windows of its series, this batch's included; the kernels
        then run on all windows at once (`Smoother.trailing_many`)."""
        smoother = self.smoother
        if smoother.span <= 1 and not self.scales:
            return raw_steps
        tails: list[np.ndarray | None] = []
        for i, raw in enumerate(raw_steps):
            link = links[i] if links is not None else None
            if link is None or history is None:
                tails.append(None)
                continue
            tail = history.before(link, smoother.span)
            history.record(link, tail, raw, smoother.span)
            tails.append(tail)
        return smoother.trailing_many(raw_steps, tails)

    def _stepwise(
        self,
        windows: Sequence[np.ndarray],
        per_point: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per window: point scores (T, C), raw step scores (T,), channel scores (C,) and
        flagged points (T, C). Windows of one length are done as one (n, T, C) stack: the
        same arithmetic as window by window, without a dozen small numpy calls per window."""
        th_point = self.active_thresholds.point
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = [()] * len(windows)  # type: ignore[list-item]
        for index in by_length(windows).values():
            w = np.stack([windows[i] for i in index])  # (n, T, C)
            nll = np.stack([per_point[i][0] for i in index])
            expected = np.stack([per_point[i][1] for i in index])
            observed = ~np.isnan(w)
            point = self._point_scores(w, nll, expected)
            counts = observed.sum(axis=2)  # (n, T) observed channels per step
            ch_counts = observed.sum(axis=1)  # (n, C) observed steps per channel
            with np.errstate(invalid="ignore", divide="ignore"):
                raw_step = np.where(
                    counts > 0, np.nansum(point, axis=2) / np.maximum(counts, 1), np.nan
                )
                channel = np.where(
                    ch_counts > 0, np.nansum(point, axis=1) / np.maximum(ch_counts, 1), np.nan
                )
            flagged = observed & (below_all(point) > th_point[None, None, :])
            for j, i in enumerate(index):
                out[i] = (point[j], raw_step[j], channel[j], flagged[j])
        return out

    def stateless(
        self, windows: Sequence[np.ndarray], rounds: int = 3, on_device: bool | None = None
    ) -> tuple[list[PointScores], list[Correction]]:
        """`point_scores` and `correct` of the same windows: what needs no series state.

        `on_device` (None: on CUDA) keeps every array on the model's device from upload to
        results (`vaecore.resident`); otherwise the host path, numpy around the network."""
        if not (self.scores_on_device if on_device is None else on_device):
            scored = self.point_scores(windows)
            return scored, self.correct(windows, scored, rounds)
        if not windows:
            return [], []
        self._check(windows)
        points: list[PointScores] = [None] * len(windows)  # type: ignore[list-item]
        corrections: list[Correction] = [None] * len(windows)  # type: ignore[list-item]
        model = self._device_model()
        with torch.inference_mode():
            for index in _by_length_and_dtype(windows):
                length = len(windows[index[0]])
                starts = sub_window_starts(length, self.window, int(self.stride or 1))
                stack = np.stack([windows[i] for i in index])  # one dtype: corrections keep it
                group = score_and_correct_on_device(model, stack, starts, rounds)
                for j, i in enumerate(index):
                    points[i], corrections[i] = _window_of(group, j)
        return points, corrections

    def _device_model(self) -> DeviceModel:
        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values, dtype=torch.float64, device=self.device)

        return DeviceModel(
            forward=self._sampled_nll,
            network_context=lambda: autocast_for(self.device, self.precision),
            center=tensor(self.scaler.center),
            scale=tensor(self.scaler.scale),
            point_threshold=tensor(self.active_thresholds.point),
            window=self.window,
            stride=int(self.stride or 1),
            max_batch=self.max_batch,
            error_score=self.score_kind == "error",
        )

    def correct(
        self, windows: Sequence[np.ndarray], scores: Sequence[Reconstruction], rounds: int = 3
    ) -> list[Correction]:
        """Replace flagged and missing points by the reconstruction, refined `rounds` times.

        Stateless: it needs only each window's flagged points and reconstruction."""
        replaced = [s.flagged | np.isnan(w) for w, s in zip(windows, scores, strict=True)]
        current = []
        for w, s, r in zip(windows, scores, replaced, strict=True):
            values = w.copy()
            values[r] = s.expected[r].astype(w.dtype)
            current.append(values)
        todo = [i for i, r in enumerate(replaced) if r.any()]
        for _ in range(rounds):
            if not todo:
                break
            recon = self._per_point([current[i] for i in todo])
            for i, (_, expected, _) in zip(todo, recon, strict=True):
                r = replaced[i]
                current[i][r] = expected[r].astype(current[i].dtype)
        return [Correction(v, r) for v, r in zip(current, replaced, strict=True)]


def _by_length_and_dtype(windows: Sequence[np.ndarray]) -> list[list[int]]:
    groups: dict[tuple[int, str], list[int]] = {}
    for i, w in enumerate(windows):
        groups.setdefault((len(w), w.dtype.str), []).append(i)
    return list(groups.values())


def _window_of(group: GroupResult, j: int) -> tuple[PointScores, Correction]:
    """Window j of a device-path group, as the host path returns it."""
    g = group
    return (
        PointScores(
            g.point[j], g.raw_step[j], g.channel[j], g.expected[j], g.expected_std[j], g.flagged[j]
        ),
        Correction(g.values[j], g.replaced[j]),
    )
