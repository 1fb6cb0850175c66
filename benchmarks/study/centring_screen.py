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

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import vaecore.detector  # noqa: F401  (loads the submodules patched below)
from benchmarks.study.capacity_screen import run_configs

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


def setup(name: str) -> dict[str, Any]:
    """Patch the trainer and the detector to the config's `prepare_batch`; no other option."""
    prepare = {"shipped": SHIPPED_PREPARE, "centre": centred_prepare}[name]
    fit_module.prepare_batch = prepare
    detector_module.prepare_batch = prepare
    return {}


def main() -> None:
    torch.set_num_threads(1)
    out, seeds, names = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    run_configs(out, seeds, names, setup)


if __name__ == "__main__":
    main()
