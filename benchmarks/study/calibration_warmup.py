"""Calibration on steady-state smoothed values vs as shipped (warm-up values pooled)."""
import sys, json
from dataclasses import replace
from pathlib import Path
import numpy as np, os
sys.path.insert(0, "/work/main")
from schemas.series_csv import read_series_csv
from training.job import TrainOptions, train_detector
from training.backfill import score_table
from training.metrics import best_f1, f1_at, auc_pr
from vaecore import calibration as cal
from vaecore.detector import Thresholds

def variant_sequences(det, points, mode):
    """Per scale: list of smoothed arrays to pool (not standardised), and per-step mask of kept."""
    raws = [p.raw_step for p in points]
    if mode == "shipped":
        seqs = [raws]
        drop = False
    elif mode == "joined":
        seqs = [[np.concatenate(raws)]]
        drop = False
    elif mode.startswith("steady") or mode.startswith("unitsteady"):
        seqs = [[np.concatenate(raws)]]
        drop = True
    elif mode.startswith("circ") or mode.startswith("unitcirc"):
        seqs = [[np.concatenate(raws)]]
        drop = "circ"
    return seqs[0], drop

def calibrate_variant(det, parts, risk, method, mode):
    if "@" in mode:
        risk = float(mode.split("@")[1])
    points = det.point_scores(cal._scorable(det, parts))
    seqs, drop = variant_sequences(det, points, mode)
    scales = []
    per_scale_vals = []
    for scale in det.scales:
        plain = replace(scale, center=0.0, spread=1.0)
        vals = [plain.smooth(r, tail=r[-(plain.span - 1):]) if drop == "circ" else plain.smooth(r) for r in seqs]
        if drop is True:
            vals = [v[plain.span - 1:] if len(v) - (plain.span - 1) >= 200 else v for v in vals]
        finite = np.concatenate(vals); finite = finite[np.isfinite(finite)]
        center = float(np.median(finite)); excess = cal.threshold(finite, risk, method) - center
        scales.append(replace(plain, center=center, spread=excess if excess > 1e-9 else 1.0))
    det2 = replace(det, scales=tuple(scales))
    if mode.startswith("unit"):  # scales from steady-state values, window threshold as shipped
        seqs, drop = [p.raw_step for p in points], False
    steps = []
    span = max(s.span for s in det2.scales)
    for r in seqs:
        s = det2.smoother.trailing(r, tail=r[-(span - 1):]) if drop == "circ" else det2.smoother.trailing(r)
        if drop is True and len(s) - (span - 1) >= 200:
            s = s[span - 1:]
        steps.append(s)
    steps = np.concatenate(steps)
    window = cal.threshold(steps, risk, method)
    calibrated = cal.calibrate(det, parts, risk, method)  # for point thresholds
    th = calibrated.active_thresholds
    return det2.with_thresholds(Thresholds(window=window, point=th.point, method=method,
                                           target_false_alarm_rate=risk, window_spread=th.window_spread)), len(steps)

MODES = os.environ.get("MODES", "shipped joined steady").split()
def main(folders):
    out = []
    for f in folders:
        f = Path(f)
        train = read_series_csv(f / "train.csv"); test = read_series_csv(f / "test.csv")
        import os; opts = TrainOptions(progress=False, seed=int(os.environ.get("SEED", "0")))
        tr = train_detector([train], opts)
        labels = np.asarray(test.labels).astype(bool) if hasattr(test, "labels") else None
        row = {"series": f"{f.parent.name}/{f.name}", "k": [s.box for s in tr.detector.scales], "n_train": sum(len(p) for p in tr.train_parts), "n_val": sum(len(p) for p in tr.val_parts)}
        for mode in MODES:
            det, n = calibrate_variant(tr.detector, [*tr.train_parts, *tr.val_parts], opts.risk, opts.method, mode)
            res = score_table(det, test, correct=False)
            pred = res.is_anomaly
            row[mode] = dict(n=n, th=round(det.active_thresholds.window, 3), auc=round(auc_pr(res.step, labels), 4),
                             best=round(best_f1(res.step, labels), 4), f1=round(f1_at(pred, labels) or 0.0, 4),
                             alarm=round(float(pred.mean()), 4), lab=round(float(labels.mean()), 4))
        print(json.dumps(row), flush=True)
        out.append(row)

if __name__ == "__main__":
    main(sys.argv[1:])
