"""How much each kind of false alarm costs (footprint_dump.py's dumps): F1 at the shipped
threshold as it is, with the spill removed (alarm steps near a labelled range but outside
it, an oracle: it knows the labels) and with the isolated false alarms removed instead.

    python benchmarks/study/footprint_bounds.py DUMP_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.footprint_screen import load, near
from training.metrics import best_f1, f1_at
from vaecore.unscored import below_all


def main() -> None:
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for path in sorted(Path(sys.argv[1]).glob("*/*.npz")):
        raw, labels, smoother, thr = load(path)
        score = below_all(smoother.centred(raw))
        alarm = score > thr
        close = near(labels, max(s.lead for s in smoother.scales))
        no_spill = alarm & (labels | ~close)
        no_isolated = alarm & close
        row = [f1_at(a, labels) or 0.0 for a in (alarm, no_spill, no_isolated)]
        row.append(best_f1(score, labels) or 0.0)
        rows[path.parent.name].append(row)
        rows["overall"].append(row)
    print("| family | F1 at the threshold | spill removed | isolated removed | best F1 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for family, values in rows.items():
        f1, no_spill, no_isolated, best = np.mean(values, axis=0)
        print(
            f"| {family} | {f1:.3f} ({f1 / best:.2f}) | {no_spill:.3f} ({no_spill / best:.2f}) | "
            f"{no_isolated:.3f} ({no_isolated / best:.2f}) | {best:.3f} |"
        )


if __name__ == "__main__":
    main()
