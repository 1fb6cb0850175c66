"""Streaming threshold adaptation (SPOT, Siffer et al. KDD 2017) on the study dump (issue 11,
fifth screen). Throw-away study script.

The score is the shipped one: two triangular scales in units of their own calibrated tail,
max taken (smoothing_thnorm.thnorm); the shipped threshold is POT 3e-3 (floor 10/n) on the
pooled calibration scores. SPOT keeps fitting the tail as the stream goes on: test steps
that did not alarm join the pool the threshold is fitted on; alarms never do. Variants:
  full-*   one refit on the calibration pool plus every test step below the first
           threshold (non-causal: an upper bound on what adaptation can do)
  spot-B   causal: the threshold is refitted every B test steps on the calibration pool
           plus the test steps so far that were below the threshold in force
  spot-B-mem-M  the same, the test's contribution limited to its last M accepted steps
Usage (repo root): nice -n 5 .venv/bin/python benchmarks/study/spot_screen.py [quick]
"""
import sys, os, collections, time
sys.path.insert(0, os.path.dirname(__file__))
import smoothing_screen as sc
from smoothing_thnorm import thnorm  # the shipped score: two scales in threshold units
import numpy as np


def fin(x):
    return x[np.isfinite(x)]


def full(cal, test, weight_test=True):
    th0 = sc.th_pot(cal)
    t = fin(test); t = t[t <= th0]
    pool = np.concatenate([fin(cal), t]) if weight_test and len(t) else (t if len(t) > 20 else fin(cal))
    return np.full(len(test), sc.th_pot(pool))


def spot(cal, test, block, mem=None):
    c = fin(cal); th = sc.th_pot(c)
    out = np.empty(len(test)); acc = []
    for lo in range(0, len(test), block):
        seg = test[lo:lo + block]
        out[lo:lo + block] = th
        f = seg[np.isfinite(seg)]
        acc.append(f[f <= th])
        a = np.concatenate(acc)
        if mem is not None:
            a = a[-mem:]
        th = sc.th_pot(np.concatenate([c, a]))
    return out


def evaluate(name, fn, data):
    M = []
    for s, (cal, test) in zip(sc.SERIES, data):
        th = fn(cal, test)
        pred = np.nan_to_num(test, nan=-np.inf) > th
        lab = s["lab"]
        f1 = sc.f1_at(pred, lab)
        M.append(dict(f1=f1, best=BEST[s["i"]], alarm=pred.mean(), lab=lab.mean(), ds=s["ds"],
                      rec=np.sum(pred & (lab == 1)) / max(lab.sum(), 1)))
    return M


def report(name, M, base=None):
    by = collections.defaultdict(list)
    for m in M:
        by[m["ds"]].append(m)
    f1 = np.mean([m["f1"] for m in M]); b = np.mean([m["best"] for m in M])
    halves = []
    for h in sc.HALVES:
        halves.append(np.mean([M[j]["f1"] for j in h]) / np.mean([M[j]["best"] for j in h]))
    fam = " | ".join(
        f"{np.mean([m['f1'] for m in by[d]]) / np.mean([m['best'] for m in by[d]]):.2f} / "
        f"{np.mean([m['alarm'] for m in by[d]]) / np.mean([m['lab'] for m in by[d]]):.1f}"
        for d in sc.FAMS)
    wl = ""
    if base is not None:
        w = sum(m["f1"] > bb["f1"] + 0.01 for m, bb in zip(M, base))
        l_ = sum(m["f1"] < bb["f1"] - 0.01 for m, bb in zip(M, base))
        wl = f"{w} / {l_}"
    inband = sum(0.5 <= np.mean([m['alarm'] for m in by[d]]) / np.mean([m['lab'] for m in by[d]]) <= 2 for d in sc.FAMS)
    return f"| {name} | {f1:.3f} / {b:.3f} = **{f1 / b:.2f}** | {halves[0]:.2f} / {halves[1]:.2f} | {wl} | {inband} | {fam} |"


if __name__ == "__main__":
    t0 = time.time()
    data = [thnorm(s) for s in sc.SERIES]
    BEST = {s["i"]: sc.best(test, s["lab"])[0] for s, (_, test) in zip(sc.SERIES, data)}
    rules = collections.OrderedDict()
    rules["shipped (POT on calibration)"] = lambda cal, test: np.full(len(test), sc.th_pot(cal))
    rules["full: calibration + test below th0"] = full
    rules["full: test below th0 only"] = lambda cal, test: full(cal, test, False)
    if "quick" not in sys.argv:
        for b in (256, 1024):
            rules[f"spot-{b}"] = (lambda b: lambda cal, test: spot(cal, test, b))(b)
        rules["spot-256-mem-4000"] = lambda cal, test: spot(cal, test, 256, 4000)
    head = ("| rule | F1 at th / best F1 | halves | W / L | families in band | "
            + " | ".join(sc.SHORT[d] for d in sc.FAMS) + " |")
    print(head); print("|" + " --- |" * (5 + len(sc.FAMS)))
    base = None
    for name, fn in rules.items():
        M = evaluate(name, fn, data)
        print(report(name, M, base), flush=True)
        base = base or M
    print(f"({time.time() - t0:.0f} s)")
