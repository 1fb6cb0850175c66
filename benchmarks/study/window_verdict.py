"""What a sliding window's verdict should look at: all its steps, or only the steps it brings.

With sliding windows (make run: 128 steps every 8), the trailing smoothed score at a step is
in every window that holds the step, so one incident's smoothed tail flags each of the ~16
windows that still hold it, long after the data stopped being anomalous. Compared here, per
family, on the study dump (model B = today's default, nll, tiling; the two scales in
threshold units exactly as shipped, calibrated on the pooled in-sample + held-out scores):

- `all`: the window is anomalous when the max smoothed score over its steps is above the
  threshold (the worker until now);
- `new`: ... over the steps no earlier window of the series held (the last `stride` steps
  of a sliding window, every step of the first window or after a gap);
- `aligned`: ... over each scale's steps at or past its lead (evidence centred in the window).

Window precision/recall: a window is labelled when any of its rows is (`expected_window_labels`,
as make run counts); incident precision/recall: the worker's episode rules on the verdicts.
Run: .venv/bin/python benchmarks/study/window_verdict.py (needs .qdata/; about a minute).
"""
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import NAMES, PERIOD, S, ds, fill, labels  # noqa: E402

from training.metrics import incident_precision_recall, segments  # noqa: E402
from vaecore.calibration import pot_threshold  # noqa: E402
from vaecore.smoothing import Scale  # noqa: E402
from episode_spans import episode_spans  # noqa: E402

MODEL, STRIDE, KIND = "B", 64, "nll"
WINDOW = 128


def scaled(i):
    """Per scale: the test's trailing standardised score, its lead; and the threshold."""
    k = max(PERIOD[i]["median"], 64)
    parts = [fill(S[(i, MODEL, STRIDE, p, KIND)]) for p in ("train", "val") if (i, MODEL, STRIDE, p, KIND) in S]
    test = fill(S[(i, MODEL, STRIDE, "test", KIND)])
    cal, out = [], []
    for sc in (Scale(k // 2, 2), Scale(k, 2)):
        pool = np.concatenate([sc.smooth(r) for r in parts])
        med = float(np.median(pool))
        th_s = pot_threshold(pool, max(3e-3, 10 / len(pool)))
        cal.append((pool - med) / (th_s - med))
        out.append(((sc.smooth(test) - med) / (th_s - med), sc.lead))
    pool = np.fmax.reduce(cal)
    return out, pot_threshold(pool, max(3e-3, 10 / len(pool)))


def verdicts(per_scale, th, n, stride, rule):
    starts = range(0, n - WINDOW + 1, stride)
    flags = []
    for j, s in enumerate(starts):
        best = -np.inf
        for z, lead in per_scale:
            w = z[s:s + WINDOW]
            cut = 0 if rule == "all" else (WINDOW - stride if j else 0) if rule == "new" else min(lead, WINDOW - 1)
            best = max(best, np.nanmax(w[cut:]))
        flags.append(best > th)
    return np.array(flags), list(starts)


def main():
    cache = {i: scaled(i) for i in range(len(NAMES))}
    fams = sorted({ds(i) for i in cache})
    for stride in (8, 32, 128):
        print(f"\nstride {stride}: window P/R (events) | incident P/R (episodes), per family, then pooled")
        for rule in ("all", "new", "aligned"):
            cells, tot, n_inc = [], np.zeros(6), {}
            for f in fams:
                acc = np.zeros(6)
                for i in [i for i in cache if ds(i) == f]:
                    per_scale, th = cache[i]
                    lab = labels(i)
                    n = len(per_scale[0][0])
                    flags, starts = verdicts(per_scale, th, n, stride, rule)
                    truth = np.array([lab[s:s + WINDOW].any() for s in starts])
                    spans = episode_spans(flags, starts, WINDOW)
                    inc = [(a, b - 1) for a, b in segments(lab)]
                    p, r = incident_precision_recall(spans, inc, slack=WINDOW)
                    acc += [(flags & truth).sum(), flags.sum(), truth.sum(),
                            round((p or 0) * len(spans)), len(spans), round((r or 0) * len(inc))]
                    n_inc[f] = n_inc.get(f, 0) + len(inc)
                tot += acc
                cells.append(f"{acc[0]/max(acc[1],1):.2f}/{acc[0]/max(acc[2],1):.2f} ({int(acc[1])}) | {acc[3]/max(acc[4],1):.2f}/{acc[5]/n_inc[f]:.2f} ({int(acc[4])})")
            print(f"{rule:8}", " || ".join(f"{f[:8]} {c}" for f, c in zip(fams, cells)),
                  f"|| pooled {tot[0]/tot[1]:.2f}/{tot[0]/tot[2]:.2f}, episodes {tot[3]/max(tot[4],1):.2f}/{tot[5]/sum(n_inc.values()):.2f} ({int(tot[4])}); window F1 {2*tot[0]/(tot[1]+tot[2]):.3f}")


main()
