"""Screen: train each series with several seeds and see whether the lowest validation loss
picks the better detector (restarts cost training time only, not scoring).

    python benchmarks/study/restart_screen.py OUT.jsonl SEEDS FAMILY...

One JSON line per (series, seed): the validation loss early stopping kept (the ELBO on the
held-out tail), and test AUC-PR, best F1 and F1 at the calibrated threshold of the shipped
score (backfill view). Analyse with restart_summary.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas.series_csv import SeriesTable, read_series_csv
from training.backfill import score_table
from training.job import Trained, TrainOptions, calibrate, train_detector
from training.metrics import auc_pr, best_f1, f1_at, f1_at_labelled_rate
from vaecore import Detector

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def labelled_series(family: str) -> Iterator[tuple[Path, SeriesTable, SeriesTable]]:
    """(folder, train, test) of every series of `family` whose test.csv has an anomaly."""
    for folder in sorted(p.parent for p in (DATA / family).glob("*/test.csv")):
        test = read_series_csv(folder / "test.csv")
        if test.labels is not None and test.labels.any():
            yield folder, read_series_csv(folder / "train.csv"), test


def fit(train: SeriesTable, opts: TrainOptions) -> tuple[Trained, Detector]:
    """One training at `opts`, and its detector calibrated as the job does."""
    trained = train_detector([train], opts)
    return trained, calibrate(trained.detector, trained.train_parts, trained.val_parts, opts)


def train_and_score(train: SeriesTable, test: SeriesTable, opts: TrainOptions) -> dict[str, Any]:
    """One training at `opts`, test scored through the backfill: the validation loss early
    stopping kept, the test metrics of the shipped score, and its alarm rate beside the labelled
    rate."""
    started = time.perf_counter()
    trained, det = fit(train, opts)
    result = score_table(det, test, correct=False)
    return {
        "val_loss": trained.history.best_val_loss,
        "epochs": len(trained.history.epochs),
        "auc_pr": auc_pr(result.step, test.labels),
        "best_f1": best_f1(result.step, test.labels),
        "f1_at_threshold": f1_at(result.is_anomaly, test.labels),
        "f1_at_labelled_rate": f1_at_labelled_rate(result.step, test.labels),
        "alarm_rate": float(np.mean(result.is_anomaly)),
        "labelled_rate": float(np.mean(test.labels)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    out, seeds, families = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    with out.open("a") as sink:
        for family in families:
            for folder, train, test in labelled_series(family):
                for seed in seeds:
                    row = {"family": family, "series": folder.name, "seed": seed}
                    row |= train_and_score(train, test, TrainOptions(progress=False, seed=seed))
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()


if __name__ == "__main__":
    main()
