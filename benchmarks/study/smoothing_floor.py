"""Smoothing floor screen (issue 11, eighth screen): the shipped two triangular scales with
k = max(period, floor) for floors 64 (shipped) / 96 / 128 / 192, on the study dump (model B,
NLL, stride 64). AUC-PR, best F1, F1 ratio at the shipped POT rule and alarm : labelled rate
per family (smoothing_screen's code), then VUS-PR (TSB-AD's code and window, peers venv).
Throw-away study script.

Usage (repo root): nice -n 5 .venv/bin/python benchmarks/study/smoothing_floor.py
Output: benchmarks/results/smoothing-floor.txt (~2 minutes).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import smoothing_screen as sc  # noqa: E402
from cal_screen_base import FAMS, HALVES, SERIES, SHORT, metrics, period, th_pot  # noqa: E402
from vus import vus_many  # noqa: E402

FLOORS = (64, 96, 128, 192)


def scored(s, floor):
    return sc.multiscale({**s, "k": max(period(s["i"]), floor)}, "tri_exact", (1.0, 2.0))


def by_family(values, fn=np.mean):
    return {d: fn([v for s, v in zip(SERIES, values) if s["ds"] == d]) for d in FAMS}


def main():
    lines, triples = [], []
    base_ap = None
    for floor in FLOORS:
        M = []
        for s in SERIES:
            cal, test = scored(s, floor)
            M.append(metrics(test, s["lab"], th_pot(cal)))
            triples.append((sc.clean(test), s["lab"], sc.P[f"te{s['i']}"][:, 0]))
        ap = [m["ap"] for m in M]
        base_ap = base_ap or ap
        w = sum(a > b + 0.01 for a, b in zip(ap, base_ap))
        l_ = sum(a < b - 0.01 for a, b in zip(ap, base_ap))
        alarm = {d: np.mean([m["alarm"] for s, m in zip(SERIES, M) if s["ds"] == d])
                 / np.mean([m["lab"] for s, m in zip(SERIES, M) if s["ds"] == d]) for d in FAMS}
        best = np.mean([m["best"] for m in M])
        lines.append(
            f"floor {floor}: AUC-PR {np.mean(ap):.3f} halves "
            + "/".join(f"{np.mean([ap[j] for j in h]):.3f}" for h in HALVES)
            + f" W/L {w}/{l_} " + " ".join(f"{SHORT[d]} {v:.3f}" for d, v in by_family(ap).items())
            + f" | best F1 {best:.3f} ratio {np.mean([m['f1'] for m in M]) / best:.2f}"
            + f" in band {sum(0.5 <= a <= 2 for a in alarm.values())}: "
            + " ".join(f"{SHORT[d]} {a:.1f}" for d, a in alarm.items()))
    vus = vus_many(triples)
    n = len(SERIES)
    per_floor = {f: vus[i * n:(i + 1) * n] for i, f in enumerate(FLOORS)}
    for f, xs in per_floor.items():
        w = sum(x > b + 0.01 for x, b in zip(xs, per_floor[64]))
        l_ = sum(x < b - 0.01 for x, b in zip(xs, per_floor[64]))
        lines.append(
            f"floor {f}: VUS-PR {np.mean(xs):.3f} halves "
            + "/".join(f"{np.mean([xs[j] for j in h]):.3f}" for h in HALVES)
            + f" W/L {w}/{l_} " + " ".join(f"{SHORT[d]} {v:.3f}" for d, v in by_family(xs).items()))
    out = "\n".join(lines) + "\n"
    print(out)
    open("benchmarks/results/smoothing-floor.txt", "w").write(out)


if __name__ == "__main__":
    main()
