"""Per-point score dump for the channel-aggregation screen (issue 11, SMD).

Usage: nice -n 10 .venv/bin/python benchmarks/study/channel_dump.py [DATA] [OUT] [SEED]
       (defaults: ../shared/data, .qdata/chan_study.npz, 0 = the product default)

For every series of the multivariate families (smd, skab-valve1) it trains the default
model exactly as `benchmarks/quality.py` (`run_vaewatch`) does: `TrainOptions(progress=False)`,
`train_detector([train])`, `calibrate(...)` on the in-sample train parts and the held-out
tails. It keeps, per series: the smoothing window k, the per-point scores (T, C; NaN where
missing) of every calibration part that `calibration.part_scores` scores (length >= the
model window) and of test, the test labels and the shipped window threshold. One torch
thread, one process (the development machine is shared). Each series is also written to
.qdata/<OUT's stem>/<dataset>__<series>.npz as it finishes, and reused on a rerun.

The point scores do not depend on the smoothing; the stored threshold is that of the one
rolling mean over k (commit 9f8add3's product; a working tree with the multiscale smoother
is asked for smoothing_kernel="mean"). The seed-1 dump of 2026-11-26 was taken before this
line was added, on a tree whose default had just become multiscale: its stored thresholds
are the multiscale ones (unused: the screen recomputes every threshold).

Sanity check printed at the end: AUC-PR of centred(nanmean over channels of test point, k)
against the `vaewatch` AUC-PR of benchmarks/results/quality.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.quality import series_folders  # noqa: E402
from schemas.series_csv import read_series_csv  # noqa: E402
from training.job import TrainOptions, calibrate, train_detector  # noqa: E402
from training.metrics import auc_pr  # noqa: E402
from vaecore.smoothing import centred  # noqa: E402

DATASETS = ["smd", "skab-valve1"]


def dump_one(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    train = read_series_csv(folder / "train.csv")
    test = read_series_csv(folder / "test.csv")
    opts = TrainOptions(progress=False, seed=seed)
    if hasattr(opts, "smoothing_kernel"):  # working tree after 9f8add3: keep the one rolling
        opts = dataclasses.replace(opts, smoothing_kernel="mean")  # mean (shipped threshold)
    started = time.perf_counter()
    trained = train_detector([train], opts)
    detector = calibrate(trained.detector, trained.train_parts, trained.val_parts, opts)
    out: dict[str, np.ndarray] = {}
    kinds = [("train", p) for p in trained.train_parts] + [("val", p) for p in trained.val_parts]
    used = [(kind, p) for kind, p in kinds if len(p) >= detector.window]  # as part_scores
    points = detector.point_scores([p for _, p in used])
    for j, ((kind, _), ps) in enumerate(zip(used, points, strict=True)):
        out[f"cal_{j}"] = ps.point.astype(np.float32)
        out[f"cal_kind_{j}"] = np.array(kind)
    out["n_cal"] = np.array(len(used))
    [tp] = detector.point_scores([test.values])
    out["test"] = tp.point.astype(np.float32)
    out["test_raw_step"] = tp.raw_step.astype(np.float32)  # the product's own channel mean
    out["labels"] = test.labels.astype(np.int8)
    out["k"] = np.array(detector.smoothing)
    out["threshold"] = np.array(detector.active_thresholds.window)
    out["first_channel"] = test.values[:, 0].astype(np.float32)  # VUS-PR's window source
    out["seconds"] = np.array(time.perf_counter() - started)
    return out


def main() -> int:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / ".qdata" / "chan_study.npz"
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    torch.set_num_threads(1)
    per_series = dest.parent / dest.stem
    per_series.mkdir(parents=True, exist_ok=True)
    folders = []
    for f in series_folders(data, DATASETS, quick=False):
        labels = read_series_csv(f / "test.csv").labels
        if labels is not None and labels.sum() > 0:  # as quality.main
            folders.append(f)
    started = time.perf_counter()
    merged: dict[str, np.ndarray] = {}
    names = []
    for i, folder in enumerate(folders):
        name = f"{folder.parent.name}__{folder.name}"
        path = per_series / f"{name}.npz"
        if path.exists():
            one = dict(np.load(path))
        else:
            one = dump_one(folder, seed)
            np.savez(path, **one)  # type: ignore[arg-type]
        print(f"{name}: k={int(one['k'])} n_cal={int(one['n_cal'])} "
              f"test={one['test'].shape} {float(one['seconds']):.0f}s", flush=True)
        names.append(name)
        for key, value in one.items():
            merged[f"{i}/{key}"] = value
    merged["names"] = np.array(names)
    np.savez(dest, **merged)  # type: ignore[arg-type]
    print(f"dump (seed {seed}): {len(names)} series, {time.perf_counter() - started:.0f}s wall, -> {dest}")

    quality = json.loads((REPO / "benchmarks" / "results" / "quality.json").read_text())
    ref = {(r["dataset"], r["series"]): r["auc_pr"] for r in quality["series"]
           if r["method"] == "vaewatch"}
    print(f"{'series':28s} {'k':>4s} {'dump':>7s} {'quality':>7s} {'diff':>7s} {'raw_step=mean':>14s}")
    for i, name in enumerate(names):
        point, labels, k = merged[f"{i}/test"], merged[f"{i}/labels"], int(merged[f"{i}/k"])
        with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            mean = np.nanmean(point.astype(np.float64), axis=1)
        same = np.allclose(mean, merged[f"{i}/test_raw_step"], rtol=1e-4, atol=1e-4, equal_nan=True)
        a = auc_pr(centred(mean, k), labels)
        dset, series = name.split("__")
        r = ref.get((dset, series))
        print(f"{name:28s} {k:4d} {a:7.4f} {r:7.4f} {a - r:+7.4f} {str(same):>14s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
