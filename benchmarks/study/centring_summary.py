"""Summary of centring_screen.py rows: per family and overall, per config (mean over the
series of each seed, then over seeds): AUC-PR, best F1, F1 at the threshold, its ratio, and
the alarm rate over the labelled rate; paired series up / down against `shipped`.

    python benchmarks/study/centring_summary.py ROWS.jsonl [ROWS.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

METRICS = ("auc_pr", "best_f1", "f1_at_threshold", "alarm_rate", "labelled_rate")


def main() -> None:
    rows = [json.loads(line) for path in sys.argv[1:] for line in open(path)]
    by = defaultdict(dict)
    for r in rows:
        by[r["config"]][(r["family"], r["series"], r["seed"])] = r
    keys = sorted(set.intersection(*(set(v) for v in by.values())))
    families = sorted({k[0] for k in keys})
    print(f"{len(keys)} (series, seed) pairs in every config")
    header = "| config | family | AUC-PR | best F1 | F1 at thr | ratio | alarm : labelled | AUC up / down |"
    print(header + "\n" + "| --- " * 8 + "|")
    for config, table in by.items():
        for family in [*families, "overall"]:
            ks = [k for k in keys if family in ("overall", k[0])]
            m = {x: np.mean([table[k][x] or 0.0 for k in ks]) for x in METRICS}
            up = sum(table[k]["auc_pr"] > by["shipped"][k]["auc_pr"] + 0.01 for k in ks)
            down = sum(table[k]["auc_pr"] < by["shipped"][k]["auc_pr"] - 0.01 for k in ks)
            print(
                f"| {config} | {family} | {m['auc_pr']:.3f} | {m['best_f1']:.3f} | "
                f"{m['f1_at_threshold']:.3f} | {m['f1_at_threshold'] / m['best_f1']:.2f} | "
                f"{m['alarm_rate'] / m['labelled_rate']:.2f} | {up} / {down} |"
            )


if __name__ == "__main__":
    main()
