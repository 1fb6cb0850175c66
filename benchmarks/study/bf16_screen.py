"""bf16 autocast on CPU (VAEWATCH_PRECISION=bf16), quality check: the same trained and
calibrated (fp32) model scores each test series in fp32 and in bf16; AUC-PR, best F1 and F1 at
the calibrated threshold, per series and on average. Two series per dataset family.
Run: .venv/bin/python benchmarks/study/bf16_screen.py  (a few minutes on 2 cores)."""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, ".")
from schemas.series_csv import read_series_csv  # noqa: E402
from training.backfill import score_table  # noqa: E402
from training.job import TrainOptions, calibrate, train_detector  # noqa: E402
from training.metrics import auc_pr, best_f1, f1_at  # noqa: E402

torch.set_num_threads(1)
DATA = Path("../shared/data")
rows = []
for family in sorted(p for p in DATA.iterdir() if p.is_dir()):
    series = sorted(p for p in family.iterdir() if (p / "test.csv").exists())[:2]
    for s in series:
        train, test = read_series_csv(s / "train.csv"), read_series_csv(s / "test.csv")
        if test.labels is None or test.labels.sum() == 0:
            continue
        opts = TrainOptions(progress=False, device="cpu")
        trained = train_detector([train], opts)
        det = calibrate(trained.detector, trained.train_parts, trained.val_parts, opts)
        out = {}
        for prec in ("fp32", "bf16"):
            det.precision = prec
            sc = score_table(det, test, correct=False)
            lab = test.labels.astype(int)
            out[prec] = (auc_pr(sc.step, lab), best_f1(sc.step, lab), f1_at(sc.is_anomaly, lab))
            out[prec + "_steps"] = sc.step
        a, b = out["fp32_steps"], out["bf16_steps"]
        ok = np.isfinite(a) & np.isfinite(b)
        rel = float(np.median(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-9)))
        flips = int((out["fp32"][2] is not None) and 0)
        rows.append((f"{family.name}/{s.name}", out["fp32"], out["bf16"], rel))
        print(f"{family.name}/{s.name:32s} fp32 auc {out['fp32'][0]:.3f} bestF1 {out['fp32'][1]:.3f} "
              f"F1@th {out['fp32'][2]:.3f} | bf16 auc {out['bf16'][0]:.3f} bestF1 {out['bf16'][1]:.3f} "
              f"F1@th {out['bf16'][2]:.3f} | median rel. score diff {rel:.4f}", flush=True)
f = np.array([[r[1][i] for i in range(3)] for r in rows], dtype=float)
g = np.array([[r[2][i] for i in range(3)] for r in rows], dtype=float)
print(f"mean over {len(rows)} series: fp32 auc {f[:,0].mean():.3f} bestF1 {f[:,1].mean():.3f} F1@th {f[:,2].mean():.3f}"
      f" | bf16 auc {g[:,0].mean():.3f} bestF1 {g[:,1].mean():.3f} F1@th {g[:,2].mean():.3f}")
