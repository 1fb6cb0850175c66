"""Calibration-rule screen on the study's dumped scores (model B, stride 64, NLL, smoothed).

Usage (from the repo root, the study dump unpacked into .qdata/):
    .venv/bin/python benchmarks/study/cal_screen.py

Per rule: mean F1 at the threshold / mean best F1 over the 51 series, and per family the
F1 ratio and alarm / labelled rate (family means, as benchmarks/quality.py reports them).
Split-half: the series of every family alternately in two halves; each rule family's
constant is chosen on one half (every family's alarm rate within 0.5-2x first, then the
highest ratio) and reported on the other, both ways. Last, the oracle alarm budget: each
series flags its top labelled-rate fraction of steps (training.metrics.f1_at_labelled_rate).
"""
import sys, os, math, collections
sys.path.insert(0, os.path.dirname(__file__))
from cal_screen_base import *
from vaecore.calibration import pot_threshold, quantile_threshold
from training.metrics import f1_at_labelled_rate

FAMS = sorted({s["ds"] for s in SERIES})
SHORT = {"nab-artificialWithAnomaly": "art", "nab-realAdExchange": "adEx", "nab-realTraffic": "traf",
         "nab-realTweets": "twt", "skab-valve1": "SKAB", "smd": "SMD"}
BEST = [best(s["test"], s["lab"])[0] for s in SERIES]


def pool_of(s):
    p = np.concatenate(s["parts"]); return p[np.isfinite(p)]


def evaluate(th_list, idx=None):
    idx = range(len(SERIES)) if idx is None else idx
    by = collections.defaultdict(list)
    for j in idx:
        s = SERIES[j]
        pred = np.nan_to_num(s["test"], nan=-np.inf) > th_list[j]
        by[s["ds"]].append((f1_at(pred, s["lab"]), BEST[j], pred.mean(), s["lab"].mean()))
    allv = [x for v in by.values() for x in v]
    f1 = np.mean([a[0] for a in allv]); b = np.mean([a[1] for a in allv])
    fam = {d: (np.mean([a[0] for a in v]) / np.mean([a[1] for a in v]),
               np.mean([a[2] for a in v]) / np.mean([a[3] for a in v])) for d, v in by.items()}
    return f1, b, fam


def row(name, th_list, idx=None):
    f1, b, fam = evaluate(th_list, idx)
    ok = all(0.5 <= fam[d][1] <= 2 for d in fam)
    cells = " | ".join(f"{fam[d][0]:.2f} / {fam[d][1]:.1f}" for d in FAMS if d in fam)
    return f"| {name} | {f1:.3f} / {b:.3f} = **{f1 / b:.2f}** | {'yes' if ok else 'no'} | {cells} |"


def exp_tail(p, r, q0=0.98):
    """POT with the GPD shape fixed at 0 (an exponential tail; Merlion-like z at 3 = 1.35e-3)."""
    t = np.quantile(p, q0); ex = p[p > t] - t
    if len(ex) < 10 or r >= 1 - q0:
        return np.quantile(p, 1 - r)
    return t + ex.mean() * math.log(len(ex) / (len(p) * r))


def declustered(parts, k, r, q0=0.98):
    """Runs declustering (Coles 2001, 5.3): clusters of exceedances of t closer than k steps
    count once (their maximum), so correlated smoothed steps are not taken as independent."""
    p = np.concatenate(parts); p = p[np.isfinite(p)]
    t = np.quantile(p, q0); maxima = []
    for part in parts:
        x = part[np.isfinite(part)]; above = np.flatnonzero(x > t)
        if not len(above): continue
        breaks = np.flatnonzero(np.diff(above) > k)
        for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(above) - 1]):
            maxima.append(x[above[a]:above[b] + 1].max() - t)
    ex = np.array(maxima)
    if len(ex) < 3:
        return np.quantile(p, 1 - max(r, 10 / len(p)))
    return t + ex.mean() * math.log(len(ex) / (len(p) * r)) if len(ex) > len(p) * r else t


def families():
    iqr = lambda p: np.subtract(*np.quantile(p, [.75, .25]))
    mad = lambda p: 1.4826 * np.median(np.abs(p - np.median(p)))
    return {
        "POT at risk r (floor 10/n); shipped r = 3e-3": [
            (f"POT r={r:g}", lambda p, s, r=r: pot_threshold(p, max(r, 10 / len(p)))) for r in (1e-2, 3e-3, 2e-3, 1e-3, 1e-4)],
        "quantile at risk r (no floor)": [
            (f"quantile r={r:g}", lambda p, s, r=r: quantile_threshold(p, r)) for r in (1e-1, 3e-2, 2e-2, 1e-2, 3e-3, 1e-3, 1e-4)],
        "POT r, init quantile q0": [
            (f"POT r={r:g} q0={q}", lambda p, s, r=r, q=q: pot_threshold(p, max(r, 10 / len(p)), q)) for r in (3e-3, 1e-3) for q in (0.9, 0.95, 0.99)],
        "exponential tail (Merlion-like z)": [
            (f"exp tail r={r:g}", lambda p, s, r=r: exp_tail(p, r)) for r in (1e-2, 3e-3, 1.35e-3, 1e-3, 3e-4)],
        "declustered exp tail (runs of k)": [
            (f"declustered r={r:g}", lambda p, s, r=r: declustered(s["parts"], s["k"], r)) for r in (3e-3, 1e-3, 3e-4)],
        "POT r, floor a*k/n (effective sample)": [
            (f"POT r={r:g} floor {a}k/n", lambda p, s, r=r, a=a: pot_threshold(p, max(r, 10 / len(p), min(a * s["k"] / len(p), 0.5)))) for r in (3e-3, 1e-3) for a in (0.1, 0.3, 1.0)],
        "max + c (max - median)": [
            (f"max + {c:g}(max-med)", lambda p, s, c=c: p.max() + c * (p.max() - np.median(p))) for c in (-0.5, -0.3, -0.1, 0, 0.25, 0.5, 1.0, 2.0)],
        "median + c IQR": [
            (f"med + {c:g} IQR", lambda p, s, c=c: np.median(p) + c * iqr(p)) for c in (3, 4, 6, 8, 10, 20)],
        "median + c MAD (robust z)": [
            (f"med + {c:g} MAD", lambda p, s, c=c: np.median(p) + c * mad(p)) for c in (4, 8, 16, 32)],
        "q99 + c (max - median)": [
            (f"q99 + {c:g}(max-med)", lambda p, s, c=c: np.quantile(p, .99) + c * (p.max() - np.median(p))) for c in (0.25, 0.5, 1.0)],
    }


if __name__ == "__main__":
    F = families()
    TH = {name: [f(pool_of(s), s) for s in SERIES] for rules in F.values() for name, f in rules}
    head = "| rule | F1@th / best F1 = ratio | alarm 0.5-2x everywhere | " + " | ".join(SHORT[d] for d in FAMS) + " |"
    print("Cells: family F1 ratio / alarm:labelled\n")
    print(head); print("| --- | ---: | :---: |" + " ---: |" * len(FAMS))
    for rules in F.values():
        for name, _ in rules:
            print(row(name, TH[name]))
    budget = [f1_at_labelled_rate(s["test"], s["lab"]) for s in SERIES]
    by = collections.defaultdict(list)
    for s, f, b in zip(SERIES, budget, BEST): by[s["ds"]].append((f, b))
    allv = [x for v in by.values() for x in v]
    f1 = np.mean([a for a, _ in allv]); b = np.mean([b for _, b in allv])
    print(f"| oracle: alarm budget = the series' labelled rate | {f1:.3f} / {b:.3f} = **{f1 / b:.2f}** | (1.0 by construction) | "
          + " | ".join(f"{np.mean([a for a, _ in by[d]]) / np.mean([b for _, b in by[d]]):.2f}" for d in FAMS) + " |")
    halves = [[], []]
    for d in FAMS:
        for n, j in enumerate(j for j, s in enumerate(SERIES) if s["ds"] == d):
            halves[n % 2].append(j)
    print("\nSplit-half: constant chosen on one half, reported on the other\n")
    print("| rule family | chosen on | constant | ratio on the other half (same rule there: shipped POT 3e-3) | alarm in range there |")
    print("| --- | ---: | --- | ---: | :---: |")
    base = TH["POT r=0.003"]
    for fam_name, rules in F.items():
        for a, b in ((0, 1), (1, 0)):
            def key(nm):
                f1, bb, fam = evaluate(TH[nm], halves[a])
                return (all(0.5 <= fam[d][1] <= 2 for d in fam), f1 / bb)
            pick = max((nm for nm, _ in rules), key=key)
            f1, bb, fam = evaluate(TH[pick], halves[b]); f0, b0, _ = evaluate(base, halves[b])
            ok = all(0.5 <= fam[d][1] <= 2 for d in fam)
            print(f"| {fam_name} | half {a} | {pick} | {f1 / bb:.2f} ({f0 / b0:.2f}) | {'yes' if ok else 'no'} |")
