"""The batch training job: load, train, calibrate, evaluate, report, publish, gate, promote.

Exit codes for schedulers (a CronJob alerts on anything but 0 and 4):
0 = published (and promoted when asked), 4 = the gate kept the old production model,
2 = bad input (one line), 3 = Kafka unreachable (`--from-topic`), 1 = unexpected failure.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog
import torch
from tqdm import tqdm

from modelstore.artifact import load_artifact, manifest_thresholds, save_artifact
from modelstore.registry import Registry
from schemas.series_csv import SeriesTable
from training.backfill import mean_metrics, score_table, series_metrics
from training.data import (
    cut_windows,
    load_tables,
    masked_values,
    split_series,
    stride_for,
    unobserved_channels,
)
from vaecore import (
    ChannelScaler,
    ConvVAE,
    Detector,
    EpochStats,
    FitConfig,
    FitHistory,
    Thresholds,
    VAEConfig,
    calibration,
    fit,
    select_device,
)
from vaecore.calibration import part_scores
from vaecore.detector import ScoreKind
from vaecore.period import FALLBACK, measured_period
from vaecore.smoothing import MAX_SPAN, Scale
from vaecore.unscored import ranked
from vwbase.errors import ModelError, UserInputError

log = structlog.get_logger(__name__)

EXIT_PUBLISHED = 0
EXIT_KEPT_OLD = 4


Variance = Literal["point", "channel"]  # the decoder's variance (VAEConfig.variance)
SmoothingKernel = Literal["multiscale", "mean"]  # vaecore.smoothing: two scales, or one mean
ThresholdMethod = Literal["pot", "quantile"]  # how the window threshold is calibrated


@dataclass(frozen=True)
class TrainOptions:
    # Defaults chosen on labelled data (docs/quality.md, "What was tried"): a 64-step window,
    # 8 latent dimensions and beta 0.5 beat 128/16/1.0 on NAB, SKAB and SMD.
    window: int = 64  # model window (time steps); longer messages are cut into sub-windows
    epochs: int = 40  # upper bound; early stopping on validation loss ends sooner
    seed: int = 0
    batch_size: int = 64
    lr: float = 2e-3
    patience: int = 5
    # Validate and keep an EMA of the weights, half-life in epochs (0 = the raw weights):
    # +0.008 VUS-PR over two seeds (docs/quality.md, "Weight averaging").
    ema_half_life: float = 1.0
    val_fraction: float = 0.2  # last part of each series held out for validation
    max_windows: int = 20000  # training windows cap (stride grows to respect it)
    latent_dim: int = 8
    beta: float = 0.5  # weight of the KL term (beta-VAE)
    variance: Variance = "channel"  # decoder variance: one per channel (default) or per point
    n_samples: int = 0  # L for scoring; 0 = posterior mean (deterministic, fastest)
    score_kind: ScoreKind = "nll"  # point score: nll | error (squared error, normalised units)
    smoothing: int = 0  # rolling mean of step scores over this many steps; 0 = the data's period
    smoothing_kernel: SmoothingKernel = "multiscale"  # max of 2 scales in threshold units, or mean
    risk: float = 3e-3  # target per-step false-alarm rate of the smoothed score
    method: ThresholdMethod = "pot"  # threshold rule
    device: str = "auto"
    max_steps: int | None = None
    tolerance: float = 0.02  # promotion gate: allowed drop of the gate metric
    progress: bool = True


@dataclass
class JobResult:
    version: str
    exit_code: int
    promoted: bool
    summary: dict[str, Any] = field(default_factory=dict)


def _windows(values: list[np.ndarray], window: int, stride: int) -> np.ndarray:
    parts = [cut_windows(v, window, stride) for v in values]
    return (
        np.concatenate([p for p in parts if len(p)]) if any(len(p) for p in parts) else np.empty(0)
    )


def _progress(opts: TrainOptions) -> tuple[Any, Any]:
    bar = tqdm(total=opts.epochs, desc="training", unit="epoch", disable=not opts.progress)

    def on_epoch(stats: EpochStats) -> None:
        bar.update(1)
        bar.set_postfix(
            loss=f"{stats.train_loss:.1f}",
            val=f"{stats.val_loss:.1f}" if stats.val_loss is not None else "-",
            win_s=f"{stats.windows_per_s:.0f}",
        )

    return bar, on_epoch


@dataclass
class Trained:
    """A fitted, not yet calibrated detector and the data it was fitted and checked on."""

    detector: Detector
    history: FitHistory
    train_parts: list[np.ndarray]  # (T, C) raw units per series, labelled points NaN
    val_parts: list[np.ndarray]  # the held-out tails, likewise
    summary: dict[str, Any]


def training_period(train_rows: Sequence[np.ndarray]) -> int | None:
    """The dominant period (TSB-AD's rule) of the longest series: the median over the channels
    where one is found, None where none is. Channels without one (constant, trending, no
    rhythm: 9-22 of SMD's 38) used to vote TSB-AD's 125-step fallback and set the median."""
    longest = max(train_rows, key=len)
    found = [p for c in range(longest.shape[1]) if (p := measured_period(longest[:, c]))]
    return int(np.median(found)) if found else None


def smoothing_steps(opts: TrainOptions, period: int | None) -> int:
    """The rolling-mean length: as asked, else the data's period but at least one model window.

    Periods found in the data range from 6 to 300 steps; under one model window they are
    mostly noise rhythms (tweet counts, valve chatter) and a mean that short leaves one-step
    spikes standing (docs/quality.md: floor 64 vs none, AUC-PR 0.577 vs 0.555). Without a
    period, TSB-AD's default window (125 steps): one model window instead lost 0.21 VUS-PR
    on the NAB tweet series without one (docs/quality.md, "Periods of multichannel data").
    """
    return opts.smoothing or max(FALLBACK if period is None else period, opts.window)


def smoothing_scales(opts: TrainOptions, steps: int) -> tuple[Scale, ...]:
    """Two triangular kernels of one and two `steps` (box steps/2 and steps, applied twice),
    put in units of their own thresholds at calibration; none for one rolling mean or no
    smoothing at all.

    Screened against the one rolling mean, other kernels, more and longer scales on the
    study dump (docs/quality.md, "Smoothing screen"): longer scales win on tweets and SKAB
    and lose on SMD; these two were the only set at least level on every family.
    """
    if opts.smoothing_kernel == "mean" or steps <= 1:
        return ()
    return (Scale(max(steps // 2, 1), 2), Scale(min(steps, (MAX_SPAN + 1) // 2), 2))


def _vae_config(opts: TrainOptions, n_channels: int) -> VAEConfig:
    return VAEConfig(
        n_channels=n_channels,
        window=opts.window,
        latent_dim=opts.latent_dim,
        beta=opts.beta,
        variance=opts.variance,
    )


def _fit_config(opts: TrainOptions) -> FitConfig:
    return FitConfig(
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        lr=opts.lr,
        patience=opts.patience,
        seed=opts.seed,
        max_steps=opts.max_steps,
        ema_half_life=opts.ema_half_life,
    )


def _require_observed_channels(train_rows: list[np.ndarray], channels: Sequence[str]) -> None:
    blind = unobserved_channels(train_rows, channels)
    if blind:
        raise UserInputError(
            f"no observed value of channel(s) {', '.join(map(repr, blind))} in the training rows"
            " (every value there is missing or labelled anomalous, and the held-out tail is not"
            " trained on): the model cannot learn what normal looks like for them; give them"
            " readings or leave the column out"
        )


def train_detector(tables: Sequence[SeriesTable], opts: TrainOptions) -> Trained:
    """Fit scaler and VAE on the training part of every series; keep both parts for calibration."""
    splits = [
        split_series(masked_values(t), opts.val_fraction, opts.window, str(t.path)) for t in tables
    ]
    train_rows = [s.train for s in splits]
    _require_observed_channels(train_rows, tables[0].channels)
    scaler = ChannelScaler.fit(np.concatenate(train_rows))
    stride = stride_for(sum(len(r) for r in train_rows), opts.window, opts.max_windows)
    train = _windows([scaler.transform(r) for r in train_rows], opts.window, stride)
    val = _windows([scaler.transform(s.val) for s in splits], opts.window, max(1, opts.window // 4))
    if len(train) == 0:
        raise UserInputError("no training window has an observed point")
    torch.manual_seed(opts.seed)
    model = ConvVAE(_vae_config(opts, len(tables[0].channels)))
    bar, on_epoch = _progress(opts)
    started = time.perf_counter()
    history = fit(model, train, val if len(val) else None, _fit_config(opts), on_epoch)
    bar.close()
    seconds = time.perf_counter() - started
    period = training_period(train_rows)
    steps = smoothing_steps(opts, period)
    detector = Detector(
        model,
        scaler,
        tables[0].channels,
        n_samples=opts.n_samples,
        score_kind=opts.score_kind,
        smoothing=steps,
        scales=smoothing_scales(opts, steps),
        period=period,
        device=select_device(opts.device),
    )
    summary = {
        "files": [str(t.path) for t in tables],
        "rows": int(sum(len(t.values) for t in tables)),
        "train_windows": len(train),
        "val_windows": len(val),
        "stride": stride,
        "period": period,
        "epochs_run": len(history.epochs),
        "best_epoch": history.best_epoch,
        "ema_half_life_epochs": opts.ema_half_life,
        "train_seconds": round(seconds, 2),
        "train_windows_per_s": round(len(train) * len(history.epochs) / max(seconds, 1e-9), 1),
    }
    return Trained(detector, history, train_rows, [s.val for s in splits], summary)


def calibrate(
    detector: Detector,
    train_parts: list[np.ndarray],
    val_parts: list[np.ndarray],
    opts: TrainOptions,
) -> Detector:
    """Thresholds on the scores the worker alerts on (smoothed), in-sample and held-out pooled.

    The held-out tail alone is short (SKAB: ~80 steps), so a 1e-3 tail rule on it is a
    guess; pooling it with the in-sample scores gives the rule enough points, and the tail
    rate asked for never goes below 10 / n (`vaecore.calibration.threshold`).
    """
    calibrated = calibration.calibrate(detector, [*train_parts, *val_parts], opts.risk, opts.method)
    th = calibrated.active_thresholds
    if th.fitted_false_alarm_rate is not None and th.fitted_false_alarm_rate > opts.risk:
        log.warning(
            "threshold_fitted_above_target_rate",
            target_false_alarm_rate=opts.risk,
            fitted_false_alarm_rate=th.fitted_false_alarm_rate,
            calibration_steps=th.calibration_steps,
            hint="fewer than 10 calibration steps lie beyond the target rate's tail; "
            "more training rows let the threshold be fitted for the target",
        )
    return calibrated


def threshold_summary(th: Thresholds) -> dict[str, Any]:
    """The thresholds as the manifest stores them, but the point array (as `models show`)."""
    return manifest_thresholds(th).model_dump(exclude={"point"})


def evaluate_detector(
    detector: Detector, tables: Sequence[SeriesTable], with_vus: bool = False
) -> dict[str, Any]:
    """Per-series metrics on labelled tables and their mean; VUS-PR when asked and available."""
    results = [score_table(detector, t, correct=False) for t in tables]
    vus: list[float | None] = [None] * len(results)
    if with_vus:
        from training.vus import vus_pr_many

        labelled = [r for r in results if r.table.labels is not None]
        vus = vus_pr_many(
            [(ranked(r.step), r.table.labels) for r in labelled],  # type: ignore[misc]
            data=[r.table.values[:, 0] for r in labelled],
        )
    rows = []
    for r, v in zip(results, vus, strict=True):
        row = {"dataset": r.table.dataset, "series": r.table.series, **series_metrics(r, v)}
        rows.append(row)
    return {"series": rows, "mean": mean_metrics(rows)}


def labelled_tests(
    paths: Sequence[Path], channels: tuple[str, ...], window: int
) -> list[SeriesTable]:
    """The test.csv files the model can be evaluated on: labelled, with an anomaly, the model's
    channels and at least one window of rows. A shorter one is left out with a warning, so
    one short file does not throw away the model just trained."""
    try:
        tables = load_tables(paths, "test.csv")
    except UserInputError:
        return []
    usable = [
        t for t in tables if t.labels is not None and t.labels.sum() > 0 and t.channels == channels
    ]
    evaluable = []
    for table in usable:
        if len(table.values) >= window:
            evaluable.append(table)
            continue
        log.warning(
            "test_series_not_evaluated",
            path=str(table.path),
            rows=len(table.values),
            window=window,
            reason="shorter than the model window",
        )
    return evaluable


def gate_metric(
    detector: Detector, tests: list[SeriesTable], val_parts: list[np.ndarray]
) -> tuple[str, float]:
    """Higher is better. Labelled AUC-PR when labelled test data exist, else -mean val NLL."""
    if tests:
        auc = evaluate_detector(detector, tests)["mean"]["auc_pr"]
        if auc is not None:
            return "auc_pr", float(auc)
    steps, _ = part_scores(detector, val_parts)
    return "neg_val_nll", -float(np.nanmean(steps))


def run_training_job(
    paths: Sequence[Path], registry_root: Path, name: str, opts: TrainOptions, promote: bool
) -> JobResult:
    tables = load_tables(paths, "train.csv")
    log.info("training_started", model=name, series=len(tables), channels=len(tables[0].channels))
    trained = train_detector(tables, opts)
    history, val_parts, data_summary = trained.history, trained.val_parts, trained.summary
    detector = calibrate(trained.detector, trained.train_parts, val_parts, opts)
    tests = labelled_tests(paths, detector.channels, detector.window)
    metrics: dict[str, Any] = {"best_val_loss": history.best_val_loss}
    if tests:
        metrics["test"] = evaluate_detector(detector, tests)["mean"]
    registry = Registry(registry_root)
    with tempfile.TemporaryDirectory(prefix="vaewatch-train-") as tmp:
        artifact = Path(tmp) / "artifact"
        save_artifact(
            detector, artifact, name=name, version="0", training_data=data_summary, metrics=metrics
        )
        try:
            from training.report import write_report

            write_report(artifact / "report", detector, history, val_parts, tests)
        except Exception as exc:  # a failed plot must not lose a trained model
            log.warning("report_failed", error=str(exc))
        version = registry.publish(name, artifact)
    summary: dict[str, Any] = {
        "model": name,
        "version": version,
        "thresholds": threshold_summary(detector.active_thresholds),
        "metrics": metrics,
        "training_data": {k: v for k, v in data_summary.items() if k != "files"},
        "report": str(registry_root / name / version / "report"),
    }
    if not promote:
        return JobResult(version, EXIT_PUBLISHED, False, summary)
    return _gate(registry, name, version, detector, tests, val_parts, opts, summary)


def _gate(
    registry: Registry,
    name: str,
    version: str,
    candidate: Detector,
    tests: list[SeriesTable],
    val_parts: list[np.ndarray],
    opts: TrainOptions,
    summary: dict[str, Any],
) -> JobResult:
    current = registry.production(name)
    if current is None:
        registry.promote(name, version)
        summary["gate"] = {"decision": "promoted", "reason": "first production model"}
        return JobResult(version, EXIT_PUBLISHED, True, summary)
    try:
        old = load_artifact(registry.resolve(f"{name}@{current}").path, opts.device)
    except ModelError as exc:
        registry.promote(name, version)
        summary["gate"] = {"decision": "promoted", "reason": f"production unloadable: {exc}"}
        return JobResult(version, EXIT_PUBLISHED, True, summary)
    if old.channels != candidate.channels or old.window != candidate.window:
        summary["gate"] = {"decision": "kept", "reason": "production has other channels/window"}
        return JobResult(version, EXIT_KEPT_OLD, False, summary)
    metric, new_value = gate_metric(candidate, tests, val_parts)
    _, old_value = gate_metric(old, tests, val_parts)
    allowed = opts.tolerance * (1.0 if metric == "auc_pr" else max(1.0, abs(old_value)))
    promoted = new_value >= old_value - allowed
    summary["gate"] = {
        "metric": metric,
        "candidate": round(new_value, 6),
        "production": round(old_value, 6),
        "production_version": current,
        "tolerance": opts.tolerance,
        "decision": "promoted" if promoted else "kept",
    }
    if promoted:
        registry.promote(name, version)
        return JobResult(version, EXIT_PUBLISHED, True, summary)
    return JobResult(version, EXIT_KEPT_OLD, False, summary)
