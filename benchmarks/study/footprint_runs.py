"""Do isolated false alarms come in shorter runs than alarms on incidents? On
footprint_dump.py's dumps: F1 at the shipped threshold when only runs of at least m steps
above it count (m as a fraction of the smoothing base k, the short scale's span).

    python benchmarks/study/footprint_runs.py DUMP_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.footprint_screen import dumped
from training.metrics import best_f1, f1_at

FRACTIONS = (0.0, 0.25, 0.5, 1.0, 2.0)


def long_runs(alarm: np.ndarray, m: int) -> np.ndarray:
    """`alarm` with runs shorter than m steps removed."""
    out = alarm.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], alarm.astype(int), [0]])))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start < m:
            out[start:end] = False
    return out


def main() -> None:
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for d in dumped(Path(sys.argv[1])):
        k = d.smoother.scales[0].span
        kept = [long_runs(d.alarm, int(f * k)) for f in FRACTIONS]
        row = [f1_at(a, d.labels) or 0.0 for a in kept] + [float(a.mean()) for a in kept]
        row += [best_f1(d.score, d.labels) or 0.0, float(d.labels.mean())]
        rows[d.family].append(row)
        rows["overall"].append(row)
    n = len(FRACTIONS)
    print("| family | " + " | ".join(f"m = {f} k" for f in FRACTIONS) + " |")
    print("| --- |" + " ---: |" * n)
    for family, values in rows.items():
        mean = np.mean(values, axis=0)
        best, labelled = mean[2 * n], mean[2 * n + 1]
        cells = [f"{mean[i] / best:.2f} / {mean[n + i] / labelled:.2f}" for i in range(n)]
        print(f"| {family} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
