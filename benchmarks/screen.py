"""Screen vaewatch training settings and score kinds on a few series per dataset, fast.

`python -m benchmarks.screen [--per-dataset 2] [KEY=VALUE ...]` trains one model per series
with TrainOptions overridden by KEY=VALUE (e.g. window=64 latent_dim=8 beta=0.5), and scores
each test split five ways from the same reconstruction:
  nll     mean over channels of the per-point Gaussian NLL (what vaewatch ships)
  err     mean squared error in normalised units (the decoder variance ignored)
  abs     mean absolute error in normalised units
  maxerr  max over channels of the squared error
  zstd    mean squared error in units of the decoder's predicted std
Prints AUC-PR and best F1 per series and their means. A screen, not the benchmark:
`make bench-quality` (all series, VUS-PR, peers) decides what ships; this picks candidates.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.quality import REPO, _typed, series_folders
from schemas.series_csv import read_series_csv
from training.job import TrainOptions, train_detector
from training.metrics import auc_pr, best_f1
from vaecore import Detector
from vaecore.unscored import ranked

KINDS = ("nll", "err", "abs", "maxerr", "zstd")


def score_kinds(detector: Detector, values: np.ndarray) -> dict[str, np.ndarray]:
    [(nll, expected, std)] = detector._per_point([values])
    observed = ~np.isnan(values)
    z = np.where(observed, (values - expected) / detector.scaler.scale, np.nan)
    kinds = {
        "nll": np.nanmean(np.where(observed, nll, np.nan), axis=1),
        "err": np.nanmean(z**2, axis=1),
        "abs": np.nanmean(np.abs(z), axis=1),
        "maxerr": np.nanmax(z**2, axis=1),
        "zstd": np.nanmean(np.where(observed, ((values - expected) / std) ** 2, np.nan), axis=1),
    }
    return {k: ranked(v) for k, v in kinds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--per-dataset", type=int, default=2, help="series per dataset")
    parser.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="TrainOptions fields")
    args = parser.parse_args()
    overrides = {k: _typed(v) for k, v in (item.split("=", 1) for item in args.settings)}
    by_dataset: dict[str, list[Path]] = {}
    for folder in series_folders(Path(args.data), None, quick=False):
        by_dataset.setdefault(folder.parent.name, []).append(folder)
    picked = [f for folders in by_dataset.values() for f in folders[: args.per_dataset]]
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    started = time.perf_counter()
    for folder in picked:
        test = read_series_csv(folder / "test.csv")
        if test.labels is None or test.labels.sum() == 0:
            continue
        opts = TrainOptions(progress=False, **overrides)
        detector = train_detector([read_series_csv(folder / "train.csv")], opts).detector
        labels = test.labels.astype(int)
        line = []
        for kind, score in score_kinds(detector, test.values).items():
            pair = (auc_pr(score, labels) or 0.0, best_f1(score, labels) or 0.0)
            results[kind].append(pair)
            line.append(f"{kind} {pair[0]:.3f}")
        print(f"{folder.parent.name}/{folder.name}: AUC-PR " + ", ".join(line), flush=True)
    print(f"\nsettings {overrides or 'defaults'}, {time.perf_counter() - started:.0f} s")
    for kind, pairs in results.items():
        auc, f1 = np.mean(pairs, axis=0)
        print(f"  {kind:<7} AUC-PR {auc:.3f}  best F1 {f1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
