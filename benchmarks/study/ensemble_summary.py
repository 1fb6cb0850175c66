"""Summarise ensemble_screen.py dumps: AUC-PR and best F1 of one seed against the mean score
of k seeds. python benchmarks/study/ensemble_summary.py DUMP_DIR"""

from __future__ import annotations

import sys
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.metrics import auc_pr, best_f1, f1_at


def zero(v: float | None) -> float:
    return 0.0 if v is None else float(v)


def ensemble(steps: np.ndarray, thresholds: np.ndarray, members: tuple[int, ...]) -> np.ndarray:
    """The mean of the members' scores, each divided by its own window threshold."""
    with np.errstate(all="ignore"):
        return np.nanmean(steps[list(members)] / thresholds[list(members), None], axis=0)


def main() -> None:
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for path in sorted(Path(sys.argv[1]).glob("*/*.npz")):
        d = np.load(path)
        steps, th, y = d["steps"], d["thresholds"], d["labels"]
        n = len(steps)
        triples = list(combinations(range(n), 3))
        row = {
            "auc_one": np.mean([zero(auc_pr(s, y)) for s in steps]),
            "f1_one": np.mean([zero(best_f1(s, y)) for s in steps]),
            "thr_one": np.mean([zero(f1_at(s >= t, y)) for s, t in zip(steps, th, strict=True)]),
            "auc_3": np.mean([zero(auc_pr(ensemble(steps, th, g), y)) for g in triples]),
            "f1_3": np.mean([zero(best_f1(ensemble(steps, th, g), y)) for g in triples]),
            "thr_3": np.mean([zero(f1_at(ensemble(steps, th, g) >= 1.0, y)) for g in triples]),
            "auc_all": zero(auc_pr(ensemble(steps, th, tuple(range(n))), y)),
            "alarm_one": np.mean([np.mean(s >= t) for s, t in zip(steps, th, strict=True)]),
            "alarm_3": np.mean([np.mean(ensemble(steps, th, g) >= 1.0) for g in triples]),
            "labelled": float(np.mean(y)),
        }
        rows[path.parent.name].append(row)
    keys = ["auc_one", "auc_3", "auc_all", "f1_one", "f1_3", "thr_one", "thr_3"]
    print("| family (n) | AUC-PR one seed | AUC-PR mean of 3 | mean of 6 | best F1 one | best F1 of 3 |"
          " F1 at threshold one | mean of 3 at 1.0 | alarm : labelled one / of 3 |")
    print("| --- |" + " ---: |" * 8)
    every = [r for fam in rows.values() for r in fam]
    for fam, rs in [*sorted(rows.items()), ("overall", every)]:
        cells = " | ".join(f"{np.mean([r[k] for r in rs]):.3f}" for k in keys)
        lab = sum(r["labelled"] for r in rs)
        alarm = f"{sum(r['alarm_one'] for r in rs) / lab:.2f} / {sum(r['alarm_3'] for r in rs) / lab:.2f}"
        print(f"| {fam} ({len(rs)}) | {cells} | {alarm} |")
    wins = sum(r["auc_3"] > r["auc_one"] + 0.01 for r in every)
    losses = sum(r["auc_3"] < r["auc_one"] - 0.01 for r in every)
    print(f"\nmean of 3 against one seed, AUC-PR ±0.01: {wins} series up, {losses} down of {len(every)}")


if __name__ == "__main__":
    main()
