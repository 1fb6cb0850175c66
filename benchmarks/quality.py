"""`make bench-quality`: detection quality on the developer data set, vaewatch vs baselines.

For every series folder (train.csv + labelled test.csv) under --data: train vaewatch with its
defaults on train.csv and score test.csv through `Detector.score` (the worker's code path);
run the baselines on the same split; compute per series AUC-PR (scikit-learn), VUS-PR
(TSB-AD's own implementation, run in benchmarks/.peers-venv because tsb-ad pins numpy<2)
and best F1 over thresholds (plus F1 at the calibrated threshold for vaewatch).

Baselines (same inputs, same scoring of every test step):
  zscore   per-channel rolling z-score over the previous 128 steps, max |z| over channels
  iforest  scikit-learn IsolationForest on sliding windows of 16 steps (all channels), fit on train
  pca      PCA reconstruction error on the same sliding windows (95% variance), fit on train
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from tqdm import tqdm

from schemas.series_csv import read_series_csv
from training.backfill import score_table
from training.job import TrainOptions, calibrate, train_detector
from training.metrics import auc_pr, best_f1, f1_at, f1_at_labelled_rate
from training.vus import peers_python, vus_pr_many
from vaecore.unscored import ranked

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PEERS_VENV = REPO / "benchmarks" / ".peers-venv"
PEERS_CACHE = Path(os.environ.get("VAEWATCH_PEERS_CACHE", REPO / "benchmarks" / ".cache"))
FEATURE_WINDOW = 16


PEERS_REQUIREMENTS = [
    "numpy<2",
    "torch==2.13.0",  # the CPU build on this disk; PyOD's VAE/AutoEncoder and TSB-AD's nets
    "scikit-learn",
    "scipy",
    "pandas",
    "statsmodels",
    "tqdm",
    "torchinfo",
    "hurst",
    "pyod==3.6.7",
]
TSB_AD = "tsb-ad==1.5"
TSB_AD_BUILD = ["setuptools<70", "wheel"]  # its sdist builds only with these (after torch)
PEER_METHODS = [
    "pyod_iforest",
    "pyod_autoencoder",
    "pyod_vae",
    "tsbad_pca",
    "tsbad_cnn",
    "tsbad_omni",
]


def ensure_peers_venv() -> None:
    """PyOD and tsb-ad in their own virtualenv: tsb-ad pins numpy<2, the project uses numpy 2.

    Rebuilt when the requirement list changes (the stamp holds the list it was built with).
    tsb-ad goes in with --no-deps: its declared dependencies pull foundation models
    (transformers, lag-llama, ...) that the methods used here do not import.
    """
    stamp = PEERS_VENV / ".installed"
    wanted = "\n".join([*PEERS_REQUIREMENTS, *TSB_AD_BUILD, TSB_AD])
    py = PEERS_VENV / "bin" / "python"
    if stamp.exists() and stamp.read_text() == wanted:
        os.environ.setdefault("VAEWATCH_PEERS_PYTHON", str(py))
        return
    print("building benchmarks/.peers-venv (PyOD, tsb-ad, numpy<2) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEERS_REQUIREMENTS], check=True)
    subprocess.run([*pip, *TSB_AD_BUILD], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", TSB_AD], check=True)
    stamp.write_text(wanted)
    os.environ.setdefault("VAEWATCH_PEERS_PYTHON", str(py))  # training.vus runs VUS-PR with it


def _peer_cache_path(method: str, splits: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """One file per method and exact input: the peers' code and data fix their scores."""
    digest = hashlib.sha256("\n".join([method, *PEERS_REQUIREMENTS, TSB_AD]).encode())
    for train, test in splits:
        digest.update(np.ascontiguousarray(train).tobytes())
        digest.update(np.ascontiguousarray(test).tobytes())
    return PEERS_CACHE / f"{method}-{digest.hexdigest()[:20]}.npz"


def run_peers(
    splits: list[tuple[np.ndarray, np.ndarray]], methods: list[str], fresh: bool = False
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Every peer on every split, reusing cached scores of identical runs (benchmarks/.cache).

    The peers are deterministic (seeded, CPU) and do not change when vaewatch does, so a
    second `make bench-quality` on the same data reads their scores back instead of spending
    half an hour recomputing them; `--fresh-peers` ignores the cache.
    """
    scores: dict[str, list[np.ndarray]] = {}
    seconds: dict[str, float] = {}
    todo = []
    for method in methods:
        cached = _peer_cache_path(method, splits)
        if cached.exists() and not fresh:
            out = np.load(cached)
            scores[method] = [out[f"score_{i}"] for i in range(len(splits))]
            seconds[method] = float(out["seconds"])
        else:
            todo.append(method)
    fresh_scores, fresh_seconds = _run_peers_now(splits, todo)
    PEERS_CACHE.mkdir(parents=True, exist_ok=True)
    for method, per_series in fresh_scores.items():
        arrays = {f"score_{i}": s for i, s in enumerate(per_series)}
        np.savez(_peer_cache_path(method, splits), seconds=fresh_seconds[method], **arrays)  # type: ignore[arg-type]
    scores.update(fresh_scores)
    seconds.update(fresh_seconds)
    return {m: scores[m] for m in methods if m in scores}, seconds


def _run_peers_now(
    splits: list[tuple[np.ndarray, np.ndarray]], methods: list[str]
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Every peer on every (train, test) split, in the peers venv; NaN scores = the peer failed."""
    python = peers_python()
    if python is None or not methods:
        return {}, {}
    with tempfile.TemporaryDirectory(prefix="vaewatch-peers-") as tmp:
        arrays: dict[str, np.ndarray] = {"n": np.array(len(splits))}
        for i, (train, test) in enumerate(splits):
            arrays[f"train_{i}"], arrays[f"test_{i}"] = _standardised(train, test)
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **arrays)  # type: ignore[arg-type]
        script = REPO / "benchmarks" / "peers" / "run_peers.py"
        subprocess.run([str(python), str(script), str(src), str(dst), *methods], check=True)
        shutil.copyfile(f"{dst}.log", RESULTS / "peers.log")
        out = np.load(dst)
        scores = {m: [out[f"{m}_{i}"] for i in range(len(splits))] for m in methods}
        seconds = {m: float(out[f"{m}_seconds"]) for m in methods}
    return scores, seconds


def fill_nan(values: np.ndarray) -> np.ndarray:
    """Baselines need complete rows: carry the last observation forward, then zeros."""
    out = values.copy()
    for c in range(out.shape[1]):
        col = out[:, c]
        mask = np.isnan(col)
        if mask.all():
            col[:] = 0.0
            continue
        idx = np.where(~mask, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        col[:] = col[idx]
        col[np.isnan(col)] = col[~np.isnan(col)][0]
    return out


def rolling_zscore(train: np.ndarray, test: np.ndarray, window: int = 128) -> np.ndarray:
    full = fill_nan(np.concatenate([train[-window:], test]))
    csum = np.cumsum(np.vstack([np.zeros((1, full.shape[1])), full]), axis=0)
    csq = np.cumsum(np.vstack([np.zeros((1, full.shape[1])), full**2]), axis=0)
    scores = np.zeros(len(test))
    for i in range(len(test)):
        t = i + min(window, len(train))
        lo = max(0, t - window)
        n = t - lo
        mean = (csum[t] - csum[lo]) / n
        var = np.maximum((csq[t] - csq[lo]) / n - mean**2, 1e-12)
        scores[i] = float(np.max(np.abs(full[t] - mean) / np.sqrt(var)))
    return scores


def windows_features(values: np.ndarray, w: int = FEATURE_WINDOW) -> np.ndarray:
    """Row t -> the w rows ending at t (padded at the start), flattened."""
    padded = np.vstack([np.repeat(values[:1], w - 1, axis=0), values])
    view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0)  # (T, C, w)
    return view.reshape(len(values), -1)


def _standardised(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tr, te = fill_nan(train), fill_nan(test)
    mu, sd = tr.mean(axis=0), tr.std(axis=0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    return (tr - mu) / sd, (te - mu) / sd


def iforest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    tr, te = _standardised(train, test)
    model = IsolationForest(n_estimators=100, random_state=0).fit(windows_features(tr))
    return np.asarray(-model.score_samples(windows_features(te)))


def pca(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    tr, te = _standardised(train, test)
    ftr, fte = windows_features(tr), windows_features(te)
    model = PCA(n_components=0.95, random_state=0).fit(ftr)
    recon = model.inverse_transform(model.transform(fte))
    return np.asarray(((fte - recon) ** 2).mean(axis=1))


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "zscore": rolling_zscore,
    "iforest": iforest,
    "pca": pca,
}


@dataclass(frozen=True)
class VaewatchRun:
    step: np.ndarray  # the backfill's smoothed step scores of test.csv
    flags: np.ndarray  # steps above the calibrated window threshold
    seconds: float  # training, calibration and scoring
    fitted_rate: float | None  # the per-step rate the window threshold was fitted for


def run_vaewatch(folder: Path, overrides: dict[str, Any]) -> VaewatchRun:
    train = read_series_csv(folder / "train.csv")
    test = read_series_csv(folder / "test.csv")
    opts = TrainOptions(progress=False, **overrides)
    started = time.perf_counter()
    trained = train_detector([train], opts)
    detector = calibrate(trained.detector, trained.train_parts, trained.val_parts, opts)
    result = score_table(detector, test, correct=False)
    fitted = detector.active_thresholds.fitted_false_alarm_rate
    return VaewatchRun(result.step, result.is_anomaly, time.perf_counter() - started, fitted)


def series_folders(root: Path, datasets: list[str] | None, quick: bool) -> list[Path]:
    folders = sorted(p.parent for p in root.rglob("test.csv") if (p.parent / "train.csv").exists())
    if datasets:
        folders = [f for f in folders if f.parent.name in datasets]
    if quick:
        seen: dict[str, Path] = {}
        for f in folders:
            seen.setdefault(f.parent.name, f)
        folders = list(seen.values())
    return folders


def _typed(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--datasets",
        nargs="*",
        help="only these dataset folders (results: quality-on-A+B.json, never quality.json)",
    )
    parser.add_argument("--quick", action="store_true", help="one series per dataset")
    parser.add_argument("--no-vus", action="store_true", help="skip VUS-PR (no peers venv)")
    parser.add_argument(
        "--peers",
        nargs="*",
        default=PEER_METHODS,
        metavar="METHOD",
        help=f"peer methods run in the peers venv (default: all of {' '.join(PEER_METHODS)})",
    )
    parser.add_argument("--no-peers", action="store_true", help="only vaewatch and baselines")
    parser.add_argument(
        "--fresh-peers", action="store_true", help="recompute peer scores (ignore the cache)"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override vaewatch training defaults (experiments; repeatable), e.g. seed=1 beta=1",
    )
    args = parser.parse_args()
    peers = [] if args.no_peers else list(args.peers)
    if not args.no_vus or peers:
        ensure_peers_venv()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    folders = series_folders(Path(args.data), args.datasets, args.quick)
    overrides = {k: _typed(v) for k, v in (item.split("=", 1) for item in args.set)}
    if not folders:
        print(f"no series under {args.data}", file=sys.stderr)
        return 2
    series: list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]] = []
    for folder in folders:
        test = read_series_csv(folder / "test.csv")
        train = read_series_csv(folder / "train.csv")
        if test.labels is not None and test.labels.sum() > 0:
            series.append((folder, train.values, test.values, test.labels.astype(int)))
    all_scores: list[dict[str, np.ndarray]] = []
    runs: list[VaewatchRun] = []
    seconds: dict[str, float] = {m: 0.0 for m in ["vaewatch", *BASELINES]}
    above_target = EventTally.install("threshold_fitted_above_target_rate")
    for folder, train_values, test_values, _ in tqdm(series, desc="vaewatch", unit="series"):
        run = run_vaewatch(folder, overrides)
        seconds["vaewatch"] += run.seconds
        scores = {"vaewatch": run.step}
        for name, method in BASELINES.items():
            started = time.perf_counter()
            scores[name] = method(train_values, test_values)
            seconds[name] += time.perf_counter() - started
        all_scores.append(scores)
        runs.append(run)
    if above_target.count:
        print(
            f"thresholds fitted above the target false-alarm rate on {above_target.count} of "
            f"{len(series)} series (too few calibration steps for the target's tail; the "
            "calibration table's 'rate fitted for' column gives the rates)"
        )
    peer_scores, peer_seconds = run_peers(
        [(tr, te) for _, tr, te, _ in series], peers, fresh=args.fresh_peers
    )
    seconds.update(peer_seconds)
    for i, by_method in enumerate(all_scores):
        for name, per_series in peer_scores.items():
            by_method[name] = per_series[i]
    rows: list[dict[str, Any]] = []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    first_channels: list[np.ndarray] = []  # VUS-PR's window: from the data, same for every method
    for (folder, _, test_values, labels), scores, run in zip(series, all_scores, runs, strict=True):
        for method_name, raw in scores.items():
            row: dict[str, Any] = {
                "dataset": folder.parent.name,
                "series": folder.name,
                "method": method_name,
            }
            if not np.isfinite(raw).any():  # the method failed on this series
                row.update(auc_pr=None, best_f1=None, vus_pr=None)
                rows.append(row)
                continue
            score = ranked(raw)
            row.update(auc_pr=auc_pr(score, labels), best_f1=best_f1(score, labels))
            if method_name == "vaewatch":
                row["f1_at_threshold"] = f1_at(run.flags, labels)
                row["f1_at_labelled_rate"] = f1_at_labelled_rate(score, labels)
                row["alarm_rate"] = float(np.mean(run.flags))
                row["labelled_rate"] = float(np.mean(labels))
                row["fitted_false_alarm_rate"] = run.fitted_rate
            rows.append(row)
            pairs.append((score, labels))
            first_channels.append(test_values[:, 0])
    vus = vus_pr_many(pairs, data=first_channels) if not args.no_vus else [None] * len(pairs)
    scored = iter(vus)
    for row in rows:
        if row["auc_pr"] is not None:
            row["vus_pr"] = next(scored)
    summary = summarise(rows)
    print_tables(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, CPU",
        "vus_pr_available": peers_python() is not None,
        "seconds_per_method": {k: round(v, 1) for k, v in seconds.items()},
        "summary": summary,
        "series": rows,
    }
    name = results_name(args.quick, args.datasets, overrides)
    doc["vaewatch_overrides"] = overrides
    (RESULTS / name).write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / name.replace(".json", ".md")).write_text(markdown_tables(summary))
    print(f"\nseconds per method: {doc['seconds_per_method']}\nwritten {RESULTS / name}")
    return 0


class EventTally:
    """A structlog processor that counts one event instead of printing it: training warns
    `threshold_fitted_above_target_rate` once per series, which for 51 series is a wall of
    identical lines between the progress bars; the run prints one count instead."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.count = 0

    def __call__(
        self, logger: object, method: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        if event_dict.get("event") == self.event:
            self.count += 1
            raise structlog.DropEvent
        return event_dict

    @classmethod
    def install(cls, event: str) -> EventTally:
        """Put a tally of `event` in front of the processors structlog has now."""
        tally = cls(event)
        structlog.configure(processors=[tally, *structlog.get_config()["processors"]])
        return tally


def results_name(quick: bool, datasets: list[str] | None, overrides: dict[str, Any]) -> str:
    """The results file of a run: quality.json only for the full default run, so that a run
    on some datasets or with overrides never overwrites the tables the docs quote."""
    parts = ["quality", *(["quick"] if quick else [])]
    parts += [f"{k}={v}" for k, v in overrides.items()]
    if datasets:
        parts.append("on-" + "+".join(sorted(datasets)))
    return "-".join(parts) + ".json"


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    datasets = [*sorted({r["dataset"] for r in rows}), "overall"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for ds in datasets:
        out[ds] = {}
        for m in methods:
            sel = [r for r in rows if r["method"] == m and (ds == "overall" or r["dataset"] == ds)]
            out[ds][m] = {
                k: (
                    float(np.mean(v))
                    if (v := [r[k] for r in sel if r.get(k) is not None])
                    else None
                )
                for k in (
                    "vus_pr",
                    "auc_pr",
                    "best_f1",
                    "f1_at_threshold",
                    "f1_at_labelled_rate",
                    "alarm_rate",
                    "labelled_rate",
                    "fitted_false_alarm_rate",
                )
            }
            out[ds][m]["n_series"] = float(len(sel))
    return out


def markdown_tables(summary: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """The summary as markdown tables (best per row in bold), for docs/quality.md."""
    titles = {"vus_pr": "VUS-PR", "auc_pr": "AUC-PR", "best_f1": "Best F1 (oracle threshold)"}
    methods = list(next(iter(summary.values())))
    out = []
    for metric, title in titles.items():
        out += [f"### {title}", "", "| dataset (series) | " + " | ".join(methods) + " |"]
        out.append("| --- |" + " ---: |" * len(methods))
        for ds, by_method in summary.items():
            values = {m: by_method[m][metric] for m in methods}
            best = max((v for v in values.values() if v is not None), default=None)
            cells = [
                "-" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}")
                for v in values.values()
            ]
            n = int(by_method[methods[0]]["n_series"] or 0)
            out.append(f"| {ds} ({n}) | " + " | ".join(cells) + " |")
        out.append("")
    out += [calibration_table(summary), ""]
    return "\n".join(out)


def calibration_table(summary: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """vaewatch at its calibrated threshold, per family: what the worker would alert on.

    "F1 at labelled rate" flags each series' top labelled-rate fraction of steps (an oracle
    alarm budget, `training.metrics.f1_at_labelled_rate`): the F1 a calibration would reach
    if it knew how many test steps are anomalous; its ratio to the best F1 is the ceiling of
    "F1 at threshold / best F1" for any rule that only gets the alarm rate right. "Rate
    fitted for" is the per-step rate the thresholds were fitted for on the training data
    (the risk, or 10 / n of short training sets): what the alarm rate would be without drift.
    """
    lines = [
        "### vaewatch at its calibrated threshold",
        "",
        "| dataset (series) | F1 at threshold | best F1 | ratio | F1 at labelled rate | its ratio "
        "| alarm rate | labelled rate | alarm / labelled | rate fitted for |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for ds, by_method in summary.items():
        v = by_method.get("vaewatch")
        if not v or v["f1_at_threshold"] is None or not v["best_f1"]:
            continue
        f1, best = v["f1_at_threshold"], v["best_f1"]
        alarm, labelled = v["alarm_rate"] or 0.0, v["labelled_rate"] or 0.0
        budget = v.get("f1_at_labelled_rate")
        budget_cells = "- | -" if budget is None else f"{budget:.3f} | {budget / best:.2f}"
        fitted = v.get("fitted_false_alarm_rate")
        fitted_cell = "-" if fitted is None else f"{fitted:.4f}"
        lines.append(
            f"| {ds} ({int(v['n_series'] or 0)}) | {f1:.3f} | {best:.3f} | {f1 / best:.2f} "
            f"| {budget_cells} | {alarm:.3f} | {labelled:.3f} | {alarm / max(labelled, 1e-9):.2f} "
            f"| {fitted_cell} |"
        )
    return "\n".join(lines)


def print_tables(summary: dict[str, dict[str, dict[str, float | None]]]) -> None:
    print("\n" + calibration_table(summary))

    def f(x: float | None) -> str:
        return "  -  " if x is None else f"{x:.3f}"

    for metric in ("vus_pr", "auc_pr", "best_f1"):
        methods = list(next(iter(summary.values())))
        width = max(10, *(len(m) + 2 for m in methods))
        print(f"\n{metric.upper():<28}" + "".join(f"{m:>{width}}" for m in methods))
        for ds, by_method in summary.items():
            n = int(by_method[methods[0]]["n_series"] or 0)
            print(
                f"{ds + f' ({n})':<28}"
                + "".join(f"{f(by_method[m][metric]):>{width}}" for m in methods)
            )


if __name__ == "__main__":
    sys.exit(main())
