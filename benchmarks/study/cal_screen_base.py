"""Shared loading for the calibration screen (issue 11 gap): model B, stride 64, NLL."""
import sys, os, glob
import numpy as np
sys.path.insert(0, os.path.dirname(__file__)); sys.path.insert(0, ".")
from vaecore.smoothing import trailing, centred
from vaecore.period import dominant_period
from sklearn.metrics import precision_recall_curve

P = np.load(".qdata/pack.npz")
NAMES = [str(n) for n in P["names"]]
S = {}
for f in sorted(glob.glob(".qdata/study*.npz")):
    d = np.load(f)
    for key in d.files:
        i, model, stride, part, kind = key.split("__")
        if model == "B" and stride == "64" and kind == "nll":
            S[(int(i), part)] = d[key].astype(np.float64)

def ds(i): return NAMES[i].split("__")[0]

def period(i):
    tr = P[f"tr{i}"].astype(np.float64); trl = P[f"trl{i}"]
    tr[trl == 1] = np.nan
    n_val = max(int(len(tr) * 0.2), 64); tr = tr[:-n_val]
    return int(np.median([dominant_period(tr[:, c]) for c in range(tr.shape[1])]))

SERIES = []
for i in range(len(NAMES)):
    k = max(period(i), 64)
    lab = P[f"tel{i}"].astype(int)
    test = centred(S[(i, "test")], k)
    parts = [trailing(S[(i, p)], k) for p in ("train", "val") if (i, p) in S]
    raw_parts = [S[(i, p)] for p in ("train", "val") if (i, p) in S]
    SERIES.append(dict(i=i, name=NAMES[i], ds=ds(i), k=k, lab=lab, test=test, parts=parts, raw_parts=raw_parts))

def clean(x):
    f = x[np.isfinite(x)]
    return np.where(np.isfinite(x), x, f.min() if f.size else 0.0)

def f1_at(pred, lab):
    tp = np.sum(pred & (lab == 1)); fp = np.sum(pred & (lab == 0)); fn = np.sum(~pred & (lab == 1))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

def best(test, lab):
    p, r, t = precision_recall_curve(lab, clean(test))
    f = 2 * p * r / np.maximum(p + r, 1e-12)
    j = int(np.argmax(f[:-1]))
    return float(f[j]), float(t[j])


# --- shared by drift_screen.py and smoothing_screen.py: families, the shipped POT rule,
# per-series metrics at a threshold, split halves (alternate series of each family)
from vaecore.calibration import pot_threshold  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

FAMS = sorted({s["ds"] for s in SERIES})
SHORT = {"nab-artificialWithAnomaly": "art", "nab-realAdExchange": "adEx", "nab-realTraffic": "traf",
         "nab-realTweets": "twt", "skab-valve1": "SKAB", "smd": "SMD"}
RISK = 3e-3


def th_pot(p):
    p = p[np.isfinite(p)]
    return pot_threshold(p, max(RISK, 10 / len(p)))


def metrics(test, lab, th):
    t = clean(test)
    pred = np.nan_to_num(test, nan=-np.inf) > th
    f1 = f1_at(pred, lab)
    bf, _ = best(test, lab)
    ap = average_precision_score(lab, t)
    rec = np.sum(pred & (lab == 1)) / max(lab.sum(), 1)
    return dict(f1=f1, best=bf, ap=ap, alarm=pred.mean(), lab=lab.mean(), rec=rec)


HALVES = [[], []]
for d in FAMS:
    for n_, j in enumerate(j for j, s in enumerate(SERIES) if s["ds"] == d):
        HALVES[n_ % 2].append(j)
