"""Episode rule defaults (issue 12), measured: incident-level precision/recall per family.

Per labelled series, from the study dump (model B = today's default, nll, tiling): the
stream's smoothed score (trailing mean over max(period, 64) steps) is cut into contiguous
128-step messages (replay's default); a message is anomalous when its max smoothed score is
above the threshold calibrated as training does today (POT 3e-3 on the pooled in-sample +
held-out smoothed scores, rate >= 10/n). The worker's own rules (`worker.episodes.apply`)
then turn the messages into episodes; an episode [opened_at, last_anomalous_at] is matched
against the labelled incidents give or take one message (`incident_precision_recall`).
Run: .venv/bin/python benchmarks/study/episode_rules.py  (needs .qdata/ from pack.py and
the dump; seconds).
"""
import itertools
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from load_study import NAMES, PERIOD, S, ds, fill, labels, trailing  # noqa: E402

from vaecore.calibration import pot_threshold  # noqa: E402
from training.metrics import incident_precision_recall, segments  # noqa: E402
from worker.episodes import EpisodeRules, ScoredWindow, SeriesEpisodes, apply  # noqa: E402

MSG = 128
MODEL, STRIDE, KIND = "B", 64, "nll"


def series_windows(i):
    k = max(PERIOD[i]["median"], 64)
    parts = [trailing(fill(S[(i, MODEL, STRIDE, p, KIND)]), k) for p in ("train", "val")
             if (i, MODEL, STRIDE, p, KIND) in S]
    pool = np.concatenate(parts)
    th = pot_threshold(pool, max(3e-3, 10 / len(pool)))
    test = trailing(fill(S[(i, MODEL, STRIDE, "test", KIND)]), k)
    n = len(test) // MSG
    flags = [bool(test[j * MSG:(j + 1) * MSG].max() > th) for j in range(n)]
    return flags, segments(labels(i)[: n * MSG])


def episodes(flags, rules):
    """[opened_at, last_anomalous_at] of every episode the worker's rules open."""
    state, spans = SeriesEpisodes(), []
    for j, a in enumerate(flags):
        w = ScoredWindow(f"w{j}", j * MSG, (j + 1) * MSG, a, 1.0, "low", {}, f"e{j}", ("m", "1"))
        open_before = state.episode
        apply(state, "s", w, rules)
        if open_before is not None and state.episode is None:
            spans.append((open_before.opened_at_ms, open_before.last_anomalous_at_ms))
    if state.episode is not None:
        spans.append((state.episode.opened_at_ms, state.episode.last_anomalous_at_ms))
    return spans


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
