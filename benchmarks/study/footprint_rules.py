"""Rules for where an alarm falls, on footprint_dump.py's dumps (test only; every rule's
threshold is one the calibration already gives, no refit): per family F1 at the threshold,
best F1 and AUC-PR of the rule's score, and alarm : labelled rate.

    python benchmarks/study/footprint_rules.py DUMP_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.footprint_screen import dumped
from training.metrics import auc_pr, best_f1, f1_at
from vaecore.smoothing import Smoother
from vaecore.unscored import below_all

Rule = Callable[[np.ndarray, Smoother, float], tuple[np.ndarray, float]]


def per_scale(raw: np.ndarray, smoother: Smoother) -> list[np.ndarray]:
    return [s.standardise(s.centred(raw)) for s in smoother.scales]


def shipped(raw: np.ndarray, smoother: Smoother, thr: float) -> tuple[np.ndarray, float]:
    return smoother.centred(raw), thr


def both(raw: np.ndarray, smoother: Smoother, thr: float) -> tuple[np.ndarray, float]:
    z = per_scale(raw, smoother)
    return np.fmin(z[0], z[1]), 1.0


def short_only(raw: np.ndarray, smoother: Smoother, thr: float) -> tuple[np.ndarray, float]:
    return per_scale(raw, smoother)[0], 1.0


def long_only(raw: np.ndarray, smoother: Smoother, thr: float) -> tuple[np.ndarray, float]:
    return per_scale(raw, smoother)[1], 1.0


def max_at_one(raw: np.ndarray, smoother: Smoother, thr: float) -> tuple[np.ndarray, float]:
    return smoother.centred(raw), 1.0


RULES: dict[str, Rule] = {
    "shipped": shipped,
    "max at 1": max_at_one,
    "both scales": both,
    "short only": short_only,
    "long only": long_only,
}


def main() -> None:
    root = Path(sys.argv[1])
    rows: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for d in dumped(root):
        for name, rule in RULES.items():
            score, level = rule(d.raw, d.smoother, d.threshold)
            score = below_all(score)
            alarm = score > level
            labels = d.labels
            values = [f1_at(alarm, labels), best_f1(score, labels), auc_pr(score, labels)]
            row = np.array([v or 0.0 for v in values] + [alarm.mean(), labels.mean()])
            rows[(name, d.family)].append(row)
            rows[(name, "overall")].append(row)
    print("| rule | family | F1 at thr | best F1 | ratio | AUC-PR | alarm : labelled |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, family), values in rows.items():
        f1, best, auc, alarm, labelled = np.mean(values, axis=0)
        print(
            f"| {name} | {family} | {f1:.3f} | {best:.3f} | {f1 / best:.2f} | {auc:.3f} | "
            f"{alarm / labelled:.2f} |"
        )


if __name__ == "__main__":
    main()
