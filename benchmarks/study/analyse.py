import sys, glob, itertools
from pathlib import Path
import numpy as np
from sklearn.metrics import average_precision_score
from scipy.signal import argrelextrema

def acf(x, nlags):
    x = x - x.mean(); n = len(x)
    f = np.fft.rfft(x, n=2 ** int(np.ceil(np.log2(2 * n))))
    ac = np.fft.irfft(f * np.conj(f))[: nlags + 1]
    return ac / ac[0] if ac[0] > 0 else np.zeros(nlags + 1)

def find_length(data):
    data = np.nan_to_num(data[:20000]); base = 3
    if data.std() == 0: return 125
    ac = acf(data, 400)[base:]
    lm = argrelextrema(ac, np.greater)[0]
    if len(lm) == 0: return 125
    best = lm[np.argmax(ac[lm])]
    if best < 3 or best > 300: return 125
    return int(best + base)

def trailing(s, k):
    c = np.cumsum(np.concatenate([[0.0], s]))
    out = np.empty_like(s)
    idx = np.arange(len(s)); lo = np.maximum(0, idx - k + 1)
    return (c[idx + 1] - c[lo]) / (idx + 1 - lo)

def centred(s, k):
    h = k // 2
    c = np.cumsum(np.concatenate([[0.0], s])); n = len(s)
    idx = np.arange(n); lo = np.maximum(0, idx - h); hi = np.minimum(n, idx + (k - h))
    return (c[hi] - c[lo]) / (hi - lo)

def fill(s):
    s = s.copy(); bad = ~np.isfinite(s)
    if bad.all(): return np.zeros_like(s)
    s[bad] = np.nanmin(s[~bad]); return s

def kinds(d, part, sfx=""):
    x = d[f"{part}_x"]; nll = d[f"{part}_nll{sfx}"]; exp = d[f"{part}_exp{sfx}"]; std = d[f"{part}_std{sfx}"]
    scale = d["scale"]; obs = ~np.isnan(x)
    z = (x - exp) / scale
    out = {}
    with np.errstate(all="ignore"):
        out["nll"] = np.nanmean(np.where(obs, nll, np.nan), axis=1)
        out["err"] = np.nanmean(np.where(obs, z ** 2, np.nan), axis=1)
        out["abs"] = np.nanmean(np.where(obs, np.abs(z), np.nan), axis=1)
        out["maxerr"] = np.nanmax(np.where(obs, z ** 2, np.nan), axis=1)
    return out, z, obs

def load(path):
    return dict(np.load(path))
