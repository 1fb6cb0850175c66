"""Screen: what an ensemble of seeds would rank like (the headroom the fourteenth screen's
oracle column points at). Trains each series with the given seeds at the shipped defaults and
dumps each model's test step scores (backfill view, in its own threshold units) to
OUT/<family>/<series>.npz; ensemble_summary.py averages them.

    python benchmarks/study/ensemble_screen.py OUT SEEDS FAMILY...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.restart_screen import fit, labelled_series
from training.backfill import score_table
from training.job import TrainOptions


def main() -> None:
    out, seeds, families = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    for family in families:
        for folder, train, test in labelled_series(family):
            target = out / family / f"{folder.name}.npz"
            if target.exists():
                continue
            steps, windows = [], []
            for seed in seeds:
                _, det = fit(train, TrainOptions(progress=False, seed=seed))
                steps.append(score_table(det, test, correct=False).step)
                windows.append(det.active_thresholds.window)
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, steps=np.array(steps), thresholds=np.array(windows),
                     labels=test.labels, seeds=np.array(seeds))


if __name__ == "__main__":
    main()
