"""Dump, per labelled series, what the shipped detector says about test.csv: the raw step
scores, each smoothing scale (box, passes, centre, spread) and the window threshold, with
the labels and the calibration pool's in-sample and held-out smoothed scores, so rules
about where the alarm falls (footprint_screen.py) and where the threshold sits
(drift_margin_screen.py) can be screened offline.

    python benchmarks/study/footprint_dump.py OUT_DIR SEED FAMILY...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.restart_screen import fit, labelled_series
from training.job import TrainOptions
from vaecore.calibration import part_scores


def main() -> None:
    torch.set_num_threads(1)
    out, seed, families = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    for family in families:
        for folder, train, test in labelled_series(family):
            target = out / f"seed{seed}" / family / f"{folder.name}.npz"
            if target.exists():
                continue
            trained, det = fit(train, TrainOptions(progress=False, seed=seed))
            index = [test.channels.index(c) for c in det.channels]
            [scores] = det.score([test.values[:, index]])
            scales = np.array([(s.box, s.passes, s.center, s.spread) for s in det.smoother.scales])
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                target,
                raw=scores.raw_step,
                scales=scales,
                labels=test.labels,
                threshold=det.active_thresholds.window,
                # the calibration pool's two halves, as the thresholds saw them
                cal_in=part_scores(det, trained.train_parts)[0],
                cal_val=part_scores(det, trained.val_parts)[0],
            )


if __name__ == "__main__":
    main()
