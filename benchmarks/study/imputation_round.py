"""One imputation round before scoring (Donut-style; issue 11, not adopted): points flagged
in a first pass are set missing, the window goes through the network again, and those points
are scored against the reconstruction that did not see them. AUC-PR of the centred smoothed
step score, base vs three flag rules (the product's point thresholds, the top 1% / 5% of each
channel's test point scores). Usage: .venv/bin/python benchmarks/study/imputation_round.py
nab-realTraffic/speed_6005 ...   (series under ../shared/data; JSON lines). Not product code."""
import sys, time, json
from pathlib import Path
import numpy as np
sys.path.insert(0, ".")
from benchmarks.quality import run_vaewatch  # noqa
from schemas.series_csv import read_series_csv
from training.job import TrainOptions, train_detector, calibrate
from training.backfill import score_table
from sklearn.metrics import average_precision_score

def nll_of(x, mean, std, det):
    c, s = det.scaler.center, det.scaler.scale
    xn, mn, sn = (x - c) / s, (mean - c) / s, std / s
    return 0.5 * (np.log(2 * np.pi) + 2 * np.log(sn) + ((xn - mn) / sn) ** 2)

def run(folder, variants):
    train = read_series_csv(folder / "train.csv"); test = read_series_csv(folder / "test.csv")
    opts = TrainOptions(progress=False)
    t0 = time.perf_counter()
    tr = train_detector([train], opts)
    det = calibrate(tr.detector, tr.train_parts, tr.val_parts, opts)
    x = np.asarray(test.values, dtype=np.float64)
    [ps] = det.point_scores([x])
    nll1, exp1, std1 = det._per_point([x])[0]
    check = nll_of(x, exp1, std1, det)
    ok = np.isfinite(check) & np.isfinite(nll1)
    lab = np.asarray(test.labels)
    out = {"name": folder.parent.name + "/" + folder.name, "check_maxdiff": float(np.nanmax(np.abs(check[ok] - nll1[ok]))), "train_s": round(time.perf_counter() - t0, 1)}
    def ap_of(point):
        raw = np.nanmean(np.where(np.isnan(x), np.nan, point), axis=1)
        step = det.smoother.centred(raw)
        f = np.isfinite(step)
        return float(average_precision_score(lab[f], step[f])), float(average_precision_score(lab[f], np.nan_to_num(raw[f])))
    out["base"] = ap_of(check)
    for name, flags in variants(det, ps, check).items():
        x2 = np.where(flags, np.nan, x)
        _, exp2, std2 = det._per_point([x2])[0]
        point = np.where(flags, nll_of(x, exp2, std2, det), check)
        out[name] = ap_of(point) + (float(flags.mean()),)
    return out

def variants(det, ps, point):
    v = {"flagged": ps.flagged}
    for q in (0.99, 0.95):
        v[f"q{q}"] = point > np.nanquantile(point, q, axis=0)[None, :]
    return v

if __name__ == "__main__":
    root = Path("/work/shared/data")
    picks = sys.argv[1:]
    for p in picks:
        print(json.dumps(run(root / p, variants)), flush=True)
