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

from benchmarks.study.footprint_screen import dumped, near
from training.metrics import best_f1, f1_at


def main() -> None:
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for d in dumped(Path(sys.argv[1])):
        close = near(d.labels, max(s.lead for s in d.smoother.scales))
        no_spill = d.alarm & (d.labels | ~close)
        no_isolated = d.alarm & close
        row = [f1_at(a, d.labels) or 0.0 for a in (d.alarm, no_spill, no_isolated)]
        row.append(best_f1(d.score, d.labels) or 0.0)
        rows[d.family].append(row)
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
