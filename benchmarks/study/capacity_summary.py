"""Summarise capacity_screen.py against the shipped defaults' rows of restart_screen.py (same
series, same seeds): python benchmarks/study/capacity_summary.py SCREEN.jsonl [...]

Per config: mean over series of the mean over seeds, per family and overall; the paired
difference to shipped; series up / down by more than 0.01 of AUC-PR; the spread between the
shipped seeds themselves for scale."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.study.restart_summary import value  # noqa: E402

BASELINE = Path(__file__).resolve().parents[1] / "results" / "restart-screen.jsonl"
METRICS = ("auc_pr", "best_f1", "f1_at_threshold")


def load(paths: list[str | Path], config: str | None = None) -> dict:
    out: dict = defaultdict(lambda: defaultdict(dict))
    for path in paths:
        for line in open(path):
            row = json.loads(line)
            name = row.get("config", config)
            out[name][(row["family"], row["series"])][row["seed"]] = row
    return out


def main() -> None:
    screen = load(sys.argv[1:])
    seeds = sorted({s for cfg in screen.values() for v in cfg.values() for s in v})
    shipped = load([BASELINE], "shipped")["shipped"]
    families = sorted({k[0] for k in shipped})
    print(f"seeds {seeds}; mean over series of the mean over seeds; Δ = paired against shipped")
    print("| config | series | " + " | ".join(f"{f} AUC-PR" for f in families)
          + " | AUC-PR | Δ | up / down | best F1 | Δ | F1 at thr | Δ | s / training |")
    print("| --- | ---: |" + " ---: |" * (len(families) + 8))
    rows = {"shipped": shipped} | {k: v for k, v in screen.items() if k != "shipped"}
    for name, runs in rows.items():
        keys = [k for k, v in runs.items() if all(s in v for s in seeds) and k in shipped]
        if not keys:
            continue

        def mean(metric: str, ks: list, src: dict = runs) -> float:
            return float(np.mean([np.mean([value(src[k][s], metric) for s in seeds]) for k in ks]))

        fam = [mean("auc_pr", [k for k in keys if k[0] == f]) if any(k[0] == f for k in keys)
               else float("nan") for f in families]
        diffs = {m: [np.mean([value(runs[k][s], m) - value(shipped[k][s], m) for s in seeds])
                     for k in keys] for m in METRICS}
        up = sum(d > 0.01 for d in diffs["auc_pr"])
        down = sum(d < -0.01 for d in diffs["auc_pr"])
        secs = np.mean([runs[k][s]["seconds"] for k in keys for s in seeds])
        cells = [f"{x:.3f}" for x in fam]
        parts = []
        for m in METRICS:
            parts += [f"{mean(m, keys):.3f}", f"{np.mean(diffs[m]):+.3f}"]
        print(f"| {name} | {len(keys)} | " + " | ".join(cells) + f" | {parts[0]} | {parts[1]} | "
              f"{up} / {down} | {parts[2]} | {parts[3]} | {parts[4]} | {parts[5]} | {secs:.1f} |")
    # scale: how far one shipped seed is from another, paired the same way
    spread = [np.mean([value(shipped[k][1], "auc_pr") - value(shipped[k][0], "auc_pr")])
              for k in shipped if 0 in shipped[k] and 1 in shipped[k]]
    print(f"\nscale: shipped seed 1 - seed 0, AUC-PR {np.mean(spread):+.3f} mean, "
          f"{sum(d > 0.01 for d in spread)} up / {sum(d < -0.01 for d in spread)} down of {len(spread)}")


if __name__ == "__main__":
    main()
