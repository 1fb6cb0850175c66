"""Alert delay in the stream (trailing view) for the shipped rolling mean vs the two-scale
triangular score, on the study dump, at each rule's calibrated POT threshold.
Usage (repo root): nice -n 5 .venv/bin/python benchmarks/study/smoothing_delay.py
Per labelled incident (a run of label 1): detected if any step from its start to its end +
k is above the threshold in the trailing view; delay = first such step - incident start.
Also: how long the alarm outlasts the incident (steps above threshold after its end,
contiguous with it), and false-alarm runs (runs of alarms touching no incident + k).
"""
import sys, os, collections
sys.path.insert(0, os.path.dirname(__file__))
import smoothing_screen as sc
import numpy as np


def trailing_view(s, specs, norm="iqr"):
    if norm == "th":  # each scale in units of its own POT threshold excess (the product)
        cals, tests = [], []
        for kern, m in specs:
            f, _ = sc.KERNELS[kern]; k = max(int(round(s["k"] * m)), 2)
            parts = [sc.S[(s["i"], p)] for p in ("train", "val") if (s["i"], p) in sc.S]
            cal = np.concatenate([f(p, k) for p in parts]); test = f(sc.S[(s["i"], "test")], k)
            c = cal[np.isfinite(cal)]; med = float(np.median(c)); d = max(sc.th_pot(cal) - med, 1e-12)
            cals.append((cal - med) / d); tests.append((test - med) / d)
        return np.fmax.reduce(cals), np.fmax.reduce(tests)
    cals, tests = [], []
    for kern, m in specs:
        f, _ = sc.KERNELS[kern]
        k = max(int(round(s["k"] * m)), 2)
        parts = [sc.S[(s["i"], p)] for p in ("train", "val") if (s["i"], p) in sc.S]
        cal = np.concatenate([f(p, k) for p in parts]); test = f(sc.S[(s["i"], "test")], k)
        if len(specs) > 1:
            cal, test = sc.robust_z(cal, test)
        cals.append(cal); tests.append(test)
    return np.fmax.reduce(cals), np.fmax.reduce(tests)


def runs(mask):
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


RULES = {"box k (shipped)": (("box", 1.0),), "max z(tri k, tri 2k)": (("tri_exact", 1.0), ("tri_exact", 2.0)),
         "tri k alone": (("tri_exact", 1.0),), "max z(box k, tri 2k)": (("box", 1.0), ("tri_exact", 2.0)),
         "max z(box k/2, box k, box 2k)": (("box", 0.5), ("box", 1.0), ("box", 2.0)),
         "max z(box k, box 2k)": (("box", 1.0), ("box", 2.0)),
         "max z_th(tri k, tri 2k) (adopted)": (("tri_exact", 1.0), ("tri_exact", 2.0), "th")}
out = collections.defaultdict(lambda: collections.defaultdict(list))
for name, specs in RULES.items():
    norm = specs[-1] if isinstance(specs[-1], str) else "iqr"
    specs = tuple(x for x in specs if not isinstance(x, str))
    for s in sc.SERIES:
        cal, test = trailing_view(s, specs, norm)
        th = sc.th_pot(cal); alarm = np.nan_to_num(test, nan=-np.inf) > th; k = s["k"]
        inc = runs(s["lab"] == 1)
        near = np.zeros(len(alarm), bool)
        for a, b in inc:
            near[a:min(b + k, len(alarm))] = True
            hit = np.flatnonzero(alarm[a:min(b + k, len(alarm))])
            out[name]["detected"].append(len(hit) > 0)
            if len(hit):
                out[name]["delay_k"].append(hit[0] / k)
                j = b
                while j < len(alarm) and alarm[j]:
                    j += 1
                out[name]["overhang_k"].append((j - b) / k)
        out[name]["false_runs"].append(sum(1 for a, b in runs(alarm) if not near[a:b].any()))
        out[name]["alarm_runs"].append(len(runs(alarm)))
for name, d in out.items():
    print(f"{name}: incidents detected {np.mean(d['detected']):.2f} of {len(d['detected'])}; "
          f"delay median {np.median(d['delay_k']):.2f} k (p25 {np.percentile(d['delay_k'], 25):.2f}, p75 {np.percentile(d['delay_k'], 75):.2f}); "
          f"alarm outlasts the incident by median {np.median(d['overhang_k']):.2f} k; "
          f"false alarm runs {sum(d['false_runs'])}, alarm runs {sum(d['alarm_runs'])}")
