"""Screen (issue 11, sixteenth): centre each sub-window on its own level before the network
(per channel, the window's mean of its observed points), the way RevIN-style instance
normalisation makes forecasters indifferent to a level that moved after training. Trains
every labelled series at the given seeds, shipped defaults otherwise, and scores test.csv
through the backfill (the worker's code path), patching `prepare_batch` in the trainer and
in the detector alike, so training, calibration and scoring all see centred windows.

    python benchmarks/study/centring_screen.py OUT.jsonl SEEDS CONFIG [CONFIG ...]

CONFIG: shipped | centre. FAMILIES=a,b limits the families. One JSON line per
(config, series, seed), with the alarm rate and labelled rate beside the ranking metrics.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import vaecore.detector  # noqa: F401  (loads the submodules patched below)
from benchmarks.study.restart_screen import fit, labelled_series
from schemas.series_csv import SeriesTable
from training.backfill import score_table
from training.job import TrainOptions
from training.metrics import auc_pr, best_f1, f1_at, f1_at_labelled_rate

FAMILIES = (
    "nab-artificialWithAnomaly",
    "nab-realAdExchange",
    "nab-realTraffic",
    "nab-realTweets",
    "skab-valve1",
    "smd",
)
fit_module = sys.modules["vaecore.fit"]  # `vaecore.fit` the attribute is the function
detector_module = sys.modules["vaecore.detector"]
SHIPPED_PREPARE = fit_module.prepare_batch


def centred_prepare(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`prepare_batch` on windows shifted by their own per-channel mean (observed points)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing channel: level 0
        level = np.nanmean(windows, axis=1, keepdims=True)
    level = np.nan_to_num(level, nan=0.0).astype(np.float32)
    return SHIPPED_PREPARE(windows - level)


def use(config: str) -> None:
    prepare = {"shipped": SHIPPED_PREPARE, "centre": centred_prepare}[config]
    fit_module.prepare_batch = prepare
    detector_module.prepare_batch = prepare  # type: ignore[attr-defined]


def train_and_score(train: SeriesTable, test: SeriesTable, opts: TrainOptions) -> dict[str, Any]:
    started = time.perf_counter()
    _, det = fit(train, opts)
    result = score_table(det, test, correct=False)
    labels = test.labels
    return {
        "auc_pr": auc_pr(result.step, labels),
        "best_f1": best_f1(result.step, labels),
        "f1_at_threshold": f1_at(result.is_anomaly, labels),
        "f1_at_labelled_rate": f1_at_labelled_rate(result.step, labels),
        "alarm_rate": float(np.mean(result.is_anomaly)),
        "labelled_rate": float(np.mean(labels)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    torch.set_num_threads(1)
    out, seeds, names = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    with out.open("a") as sink:
        for name in names:
            use(name)
            for family in os.environ.get("FAMILIES", ",".join(FAMILIES)).split(","):
                for folder, train_t, test in labelled_series(family):
                    for seed in seeds:
                        opts = TrainOptions(progress=False, seed=seed)
                        row = {"config": name, "family": family, "series": folder.name}
                        row["seed"] = seed
                        row |= train_and_score(train_t, test, opts)
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()


if __name__ == "__main__":
    main()
