"""Dump, per labelled series, what the shipped detector says about test.csv: the raw step
scores, each smoothing scale (box, passes, centre, spread) and the window threshold, with
the labels, so rules about *where* the alarm falls can be screened offline
(footprint_screen.py).

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


def main() -> None:
    torch.set_num_threads(1)
    out, seed, families = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    for family in families:
        for folder, train, test in labelled_series(family):
            target = out / f"seed{seed}" / family / f"{folder.name}.npz"
            if target.exists():
                continue
            _, det = fit(train, TrainOptions(progress=False, seed=seed))
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
            )


if __name__ == "__main__":
    main()
