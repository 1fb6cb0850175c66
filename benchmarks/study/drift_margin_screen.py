"""Does the drift *inside* the training data say how far the test data will drift? The
held-out tail is the newest part of each training series: where it scores above the
in-sample part, the series is moving, and the test, newer still, may score higher again
(the `make run` slice: median smoothed score 0.96 in-sample, 1.16 held out, 1.36 on normal
test steps). Rules that raise the shipped threshold by that observed drift, screened on
footprint_dump.py's dumps (which hold both calibration halves), no training:

    thr + a * max(0, stat(held-out) - stat(in-sample))   stat = median or 90th percentile

in the score's own units (each scale in units of its calibrated tail, so the shipped
threshold is near 1 and the pooled median near 0). Per family: F1 ratio / alarm : labelled;
overall; the two halves (alternate series of each family); series won / lost against the
shipped threshold by F1 at the threshold (more than 0.01).

    python benchmarks/study/drift_margin_screen.py DUMP_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.footprint_screen import Dumped, dumped
from training.metrics import best_f1, f1_at

Rule = Callable[[Dumped], float]


def finite(x: np.ndarray | None) -> np.ndarray:
    assert x is not None, "a dump without the calibration halves: rerun footprint_dump.py"
    return x[np.isfinite(x)]


def drift(stat: Callable[[np.ndarray], float]) -> Callable[[Dumped], float]:
    def observed(d: Dumped) -> float:
        inside, held = finite(d.cal_in), finite(d.cal_val)
        if len(inside) == 0 or len(held) == 0:
            return 0.0
        return max(0.0, stat(held) - stat(inside))

    return observed


MEDIAN = drift(lambda x: float(np.median(x)))
Q90 = drift(lambda x: float(np.quantile(x, 0.9)))


def margin(measure: Callable[[Dumped], float], a: float) -> Rule:
    return lambda d: d.threshold + a * measure(d)


RULES: dict[str, Rule] = {"shipped": lambda d: d.threshold}
for a in (0.5, 1.0, 2.0):
    RULES[f"+ {a:g} x median drift"] = margin(MEDIAN, a)
    RULES[f"+ {a:g} x q90 drift"] = margin(Q90, a)


def held_out_maximum(d: Dumped) -> float:
    held = finite(d.cal_val)
    return max(d.threshold, float(held.max())) if len(held) else d.threshold


RULES["held-out maximum, if higher"] = held_out_maximum


def main() -> None:
    series = list(dumped(Path(sys.argv[1])))
    best = [best_f1(d.score, d.labels) or 0.0 for d in series]
    half = {}
    seen: dict[str, int] = defaultdict(int)
    for i, d in enumerate(series):
        half[i] = seen[d.family] % 2
        seen[d.family] += 1
    shipped = [f1_at(d.score > d.threshold, d.labels) or 0.0 for d in series]
    families = sorted(seen)
    print("| rule | F1 / best F1 | halves | W / L | " + " | ".join(families) + " |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(families))
    for name, rule in RULES.items():
        alarms = [d.score > rule(d) for d in series]
        f1 = [f1_at(a, d.labels) or 0.0 for a, d in zip(alarms, series, strict=True)]
        cells = []
        for fam in families:
            idx = [i for i, d in enumerate(series) if d.family == fam]
            ratio = np.mean([f1[i] for i in idx]) / np.mean([best[i] for i in idx])
            rate = np.mean([alarms[i].mean() for i in idx]) / np.mean(
                [series[i].labels.mean() for i in idx]
            )
            cells.append(f"{ratio:.2f} / {rate:.1f}")
        halves = [
            np.mean([f1[i] for i in half if half[i] == h])
            / np.mean([best[i] for i in half if half[i] == h])
            for h in (0, 1)
        ]
        won = sum(f > s + 0.01 for f, s in zip(f1, shipped, strict=True))
        lost = sum(f < s - 0.01 for f, s in zip(f1, shipped, strict=True))
        print(
            f"| {name} | {np.mean(f1):.3f} / {np.mean(best):.3f} = {np.mean(f1) / np.mean(best):.2f}"
            f" | {halves[0]:.2f} / {halves[1]:.2f} | {won} / {lost} | " + " | ".join(cells) + " |"
        )


if __name__ == "__main__":
    main()
