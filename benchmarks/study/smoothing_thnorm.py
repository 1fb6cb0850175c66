"""Two triangular scales, each standardised by its own calibrated threshold instead of its
IQR: z_s = (v - median_s) / (threshold_s - median_s), so z_s = 1 at the scale's own POT
threshold (3e-3, floor 10/n), score = max_s z_s. Alarm rule: score > 1 (any scale above its
own threshold: "union") or POT again on the max ("pot-on-max"). AUC-PR / best F1 / F1 ratio /
alarm rates as in smoothing_screen.py; VUS-PR with --vus.
Usage (repo root): nice -n 5 .venv/bin/python benchmarks/study/smoothing_thnorm.py [--vus]
"""
import sys, os, collections
sys.path.insert(0, os.path.dirname(__file__))
import smoothing_screen as sc
import numpy as np


def thnorm(s, mults=(1.0, 2.0)):
    cals, tests = [], []
    for m in mults:
        cal, test = sc.single(s, "tri_exact", m)
        c = cal[np.isfinite(cal)]; med = float(np.median(c)); th = sc.th_pot(cal)
        d = max(th - med, 1e-12)
        cals.append((cal - med) / d); tests.append((test - med) / d)
    return np.fmax.reduce(cals), np.fmax.reduce(tests)


RULES = {
    "box k (shipped before)": (lambda s: sc.single(s, "box"), None),
    "max z_IQR(tri k, tri 2k), POT on max (committed)": (lambda s: sc.multiscale(s, "tri_exact", (1.0, 2.0)), None),
    "max z_th(tri k, tri 2k), POT on max": (thnorm, None),
    "max z_th(tri k, tri 2k), union (> 1)": (thnorm, 1.0),
}
if __name__ == "__main__":
    RES = {}
    for name, (fn, fixed) in RULES.items():
        M = []
        for s in sc.SERIES:
            cal, test = fn(s)
            M.append(sc.metrics(test, s["lab"], fixed if fixed is not None else sc.th_pot(cal)))
        RES[name] = M
    base = RES["box k (shipped before)"]
    print("| rule | AP | half 0 | half 1 | W/L | " + " | ".join(sc.SHORT[d] for d in sc.FAMS) + " | best F1 | ratio | "
          + " | ".join(f"{sc.SHORT[d]} al" for d in sc.FAMS) + " |")
    for name, M in RES.items():
        print(sc.row(name, M, base))
    if "--vus" in sys.argv:
        from vus import vus_many
        triples, meta = [], []
        for name, (fn, _) in list(RULES.items())[2:3]:
            for j, s in enumerate(sc.SERIES):
                _, test = fn(s); triples.append((sc.clean(test), s["lab"], sc.P[f"te{s['i']}"][:, 0])); meta.append(j)
        v = vus_many(triples)
        by = collections.defaultdict(list)
        for j, x in zip(meta, v): by[sc.SERIES[j]["ds"]].append(x)
        print("VUS-PR max z_th:", f"{np.mean(v):.3f}", " ".join(f"{sc.SHORT[d]} {np.mean(by[d]):.3f}" for d in sc.FAMS))
