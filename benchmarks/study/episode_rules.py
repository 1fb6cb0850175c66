"""Episode rule defaults (issue 12), measured: incident-level precision/recall per family.

Per labelled series, from the study dump (model B = today's default, nll, tiling): the
stream's smoothed score (trailing mean over max(period, 64) steps) is cut into contiguous
128-step messages (replay's default); a message is anomalous when its max smoothed score is
above the threshold calibrated as training does today (POT 3e-3 on the pooled in-sample +
held-out smoothed scores, rate >= 10/n). The worker's own rules (`worker.episodes.apply`)
then turn the messages into episodes; an episode [opened_at, last_anomalous_at] is matched
against the labelled incidents give or take one message (`incident_precision_recall`).
Run: .venv/bin/python benchmarks/study/episode_rules.py  (needs .qdata/ from pack.py and
the dump; seconds). `--multiscale`: the two-scale score in IQR units (issue 11's smoothing
screen); `--variant=thnorm`: in units of each scale's own threshold (adopted);
`--variant=union=R`: any scale above its own threshold at rate R; `--variant=tri1`: the
triangle of k alone.
"""
import itertools
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import NAMES, PERIOD, S, ds, fill, labels, trailing  # noqa: E402

from vaecore.calibration import pot_threshold  # noqa: E402
from training.metrics import incident_precision_recall, segments  # noqa: E402
from worker.episodes import EpisodeRules  # noqa: E402
from episode_spans import episode_spans  # noqa: E402

MSG = 128
MODEL, STRIDE, KIND = "B", 64, "nll"


MULTISCALE = "--multiscale" in sys.argv  # the product's two-scale score (vaecore.smoothing)
VARIANT = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--variant=")), "")


def _smoother(k, raw_parts):
    """The product's default: triangles of k and 2k, standardised as calibration does."""
    from dataclasses import replace
    from vaecore.calibration import robust_spread
    from vaecore.smoothing import Scale, Smoother
    scales = []
    for sc in (Scale(k // 2, 2), Scale(k, 2)):
        v = np.concatenate([sc.smooth(r) for r in raw_parts])
        scales.append(replace(sc, center=float(np.nanmedian(v)), spread=robust_spread(v)))
    return Smoother(tuple(scales))


def _variant_windows(i, k, raw_parts, raw_test):
    """Screen variants: tri1 = triangle of k alone; thnorm = each scale in units of its own
    POT threshold excess, max, POT again on the max; union=R = alarm when any scale is above
    its own POT threshold at rate R."""
    from vaecore.smoothing import Scale
    scales = (Scale(k // 2, 2),) if VARIANT == "tri1" else (Scale(k // 2, 2), Scale(k, 2))
    cal_z, test_z = [], []
    for sc in scales:
        parts = [sc.smooth(r) for r in raw_parts]; pool = np.concatenate(parts)
        med = float(np.median(pool))
        rate = float(VARIANT.split("=")[1]) if VARIANT.startswith("union") else 3e-3
        th_s = pot_threshold(pool, max(rate, 10 / len(pool)))
        cal_z.append((pool - med) / (th_s - med)); test_z.append((sc.smooth(raw_test) - med) / (th_s - med))
    pool, test = np.fmax.reduce(cal_z), np.fmax.reduce(test_z)
    th = 1.0 if VARIANT.startswith("union") or VARIANT == "tri1" else pot_threshold(pool, max(3e-3, 10 / len(pool)))
    n = len(test) // MSG
    flags = [bool(test[j * MSG:(j + 1) * MSG].max() > th) for j in range(n)]
    return flags, segments(labels(i)[: n * MSG])


def series_windows(i):
    k = max(PERIOD[i]["median"], 64)
    raw_parts = [fill(S[(i, MODEL, STRIDE, p, KIND)]) for p in ("train", "val")
                 if (i, MODEL, STRIDE, p, KIND) in S]
    raw_test = fill(S[(i, MODEL, STRIDE, "test", KIND)])
    if VARIANT:
        return _variant_windows(i, k, raw_parts, raw_test)
    smooth = _smoother(k, raw_parts).trailing if MULTISCALE else (lambda x: trailing(x, k))
    parts = [smooth(r) for r in raw_parts]
    pool = np.concatenate(parts)
    th = pot_threshold(pool, max(3e-3, 10 / len(pool)))
    test = smooth(raw_test)
    n = len(test) // MSG
    flags = [bool(test[j * MSG:(j + 1) * MSG].max() > th) for j in range(n)]
    return flags, segments(labels(i)[: n * MSG])


def episodes(flags, rules):
    """[opened_at, last_anomalous_at] of every episode the worker's rules open."""
    return episode_spans(flags, [j * MSG for j in range(len(flags))], MSG, rules)


DATA = {i: series_windows(i) for i in range(len(NAMES))}
FAMILIES = sorted({ds(i) for i in DATA})
GRID = [((1, 1), r) for r in (1, 2, 3, 5, 8)] + [
    (o, r) for o, r in itertools.product([(2, 2), (2, 3), (3, 3), (2, 4), (3, 5)], (1, 2, 3, 5, 8))
]


def score(opening, resolve, series):
    rules = EpisodeRules(opening[0], opening[1], resolve, 1e12, 1e12)
    tp = n_alerts = found = n_inc = 0
    for i in series:
        flags, incidents = DATA[i]
        spans = episodes(flags, rules)
        p, r = incident_precision_recall(spans, [(a, b - 1) for a, b in incidents], slack=MSG)
        n_alerts += len(spans); tp += round((p or 0) * len(spans))
        n_inc += len(incidents); found += round((r or 0) * len(incidents))
    p = tp / n_alerts if n_alerts else 0.0
    r = found / n_inc if n_inc else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0, n_alerts


def table(series_of_family, title):
    print(title)
    print("rule (min/within, resolve) | " + " | ".join(f"{f[:10]:>16}" for f in FAMILIES) + " | macro F1")
    rows = []
    for opening, resolve in GRID:
        cells, f1s = [], []
        for f in FAMILIES:
            p, r, f1, n = score(opening, resolve, series_of_family[f])
            cells.append(f"{p:.2f}/{r:.2f} n{n:<4}")
            f1s.append(f1)
        rows.append((np.mean(f1s), opening, resolve, cells))
        print(f"{opening[0]}/{opening[1]}, {resolve}".ljust(26), "|", " | ".join(cells), f"| {np.mean(f1s):.3f}")
    return rows


by_family = {f: [i for i in DATA if ds(i) == f] for f in FAMILIES}
rows = table(by_family, "all series: incident precision/recall, episodes (n), per family")
for half in (0, 1):
    split = {f: [i for k, i in enumerate(v) if k % 2 == half] for f, v in by_family.items()}
    best = max(table(split, f"\nhalf {half}"), key=lambda r: r[0])
    print(f"half {half} best: {best[1]}, resolve {best[2]}, macro F1 {best[0]:.3f}")
