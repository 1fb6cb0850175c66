import sys, glob, collections
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__)); sys.path.insert(0, ".")
from analyse import trailing, centred, fill
from vaecore.period import dominant_period
P = np.load(".qdata/pack.npz")
NAMES = [str(n) for n in P["names"]]
S = {}
for f in glob.glob(".qdata/study*.npz"):
    d = np.load(f)
    for k in d.files:
        i, model, stride, part, kind = k.split("__")
        S[(int(i), model, int(stride), part, kind)] = d[k].astype(np.float64)
def labels(i): return P[f"tel{i}"].astype(int)
def train_vals(i): return P[f"tr{i}"]
def test_vals(i): return P[f"te{i}"]
def ds(i): return NAMES[i].split("__")[0]
PERIOD = {}
for i in range(len(NAMES)):
    tr = P[f"tr{i}"].astype(np.float64); trl = P[f"trl{i}"]
    tr[trl == 1] = np.nan
    n_val = max(int(len(tr) * 0.2), 64); tr = tr[:-n_val]
    PERIOD[i] = {"first": dominant_period(tr[:, 0]), "median": int(np.median([dominant_period(tr[:, c]) for c in range(tr.shape[1])]))}
