"""Summarise restart_screen.py: does the lowest validation loss of k restarts pick a better
detector than one seed? python benchmarks/study/restart_summary.py A.jsonl [B.jsonl ...]"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from itertools import combinations

import numpy as np

METRICS = ("auc_pr", "best_f1", "f1_at_threshold")


def load(paths: list[str]) -> dict[tuple[str, str], dict[int, dict]]:
    runs: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for path in paths:
        for line in open(path):
            row = json.loads(line)
            runs[(row["family"], row["series"])][row["seed"]] = row
    return runs


def value(row: dict, metric: str) -> float:
    return float(row[metric]) if row[metric] is not None else 0.0


def pick_lowest_loss(rows: list[dict]) -> dict:
    """Without a validation loss (no held-out window observed) there is nothing to select
    by: the first seed of the group stands, as a single training would."""
    if any(r["val_loss"] is None for r in rows):
        return rows[0]
    return min(rows, key=lambda r: r["val_loss"])


def pick_highest_loss(rows: list[dict]) -> dict:
    if any(r["val_loss"] is None for r in rows):
        return rows[0]
    return max(rows, key=lambda r: r["val_loss"])


def main() -> None:
    runs = load(sys.argv[1:])
    seeds = sorted(set.union(*(set(v) for v in runs.values())))  # series still running: left out
    runs = {k: v for k, v in runs.items() if all(s in v for s in seeds)}
    groups = [g for g in combinations(seeds, 3)]
    fams: dict[str, list] = defaultdict(list)
    for key, by_seed in runs.items():
        fams[key[0]].append(key)
    print(f"{len(runs)} series, seeds {seeds}; 'one seed' = mean over single seeds,"
          f" 'best of 3' = mean over all {len(groups)} triples of the triple's lowest val loss")
    header = "| family (n) | metric | one seed | lowest loss of 3 | lowest loss of all | highest loss of 3 | oracle of 3 |"
    print(header)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for fam in sorted(fams) + ["overall"]:
        keys = [k for k in runs if fam in ("overall", k[0])]
        for metric in METRICS:
            one, low3, lowall, high3, orac = [], [], [], [], []
            for k in keys:
                rows = [runs[k][s] for s in seeds]
                one.append(np.mean([value(r, metric) for r in rows]))
                low3.append(np.mean([value(pick_lowest_loss([runs[k][s] for s in g]), metric) for g in groups]))
                high3.append(np.mean([value(pick_highest_loss([runs[k][s] for s in g]), metric) for g in groups]))
                orac.append(np.mean([max(value(runs[k][s], metric) for s in g) for g in groups]))
                lowall.append(value(pick_lowest_loss(rows), metric))
            print(f"| {fam} ({len(keys)}) | {metric} | {np.mean(one):.3f} | {np.mean(low3):.3f} | {np.mean(lowall):.3f} | {np.mean(high3):.3f} | {np.mean(orac):.3f} |")
    print("\nSeed spread: each seed's family mean (one full run with that seed), min / max / std")
    for fam in sorted(fams) + ["overall"]:
        keys = [k for k in runs if fam in ("overall", k[0])]
        for metric in ("auc_pr", "f1_at_threshold"):
            per_seed = [np.mean([value(runs[k][s], metric) for k in keys]) for s in seeds]
            print(f"  {fam} ({len(keys)}) {metric}: {min(per_seed):.3f} / {max(per_seed):.3f} / {np.std(per_seed):.3f}")
    ratios = [
        np.mean([value(runs[k][s], "f1_at_threshold") for k in runs])
        / np.mean([value(runs[k][s], "best_f1") for k in runs])
        for s in seeds
    ]
    print("  overall F1 at threshold / best F1, per seed: " + ", ".join(f"{r:.3f}" for r in ratios))
    # rank correlation of val loss with AUC-PR within each series
    rhos = []
    for k, by_seed in runs.items():
        if any(by_seed[s]["val_loss"] is None for s in seeds):
            continue
        loss = np.array([by_seed[s]["val_loss"] for s in seeds])
        auc = np.array([value(by_seed[s], "auc_pr") for s in seeds])
        if np.ptp(auc) > 0:
            rl, ra = loss.argsort().argsort(), auc.argsort().argsort()
            rhos.append(np.corrcoef(rl, ra)[0, 1])
    print(f"\nSpearman(val loss, AUC-PR) within series: mean {np.mean(rhos):+.3f}, "
          f"median {np.median(rhos):+.3f}, negative in {sum(r < 0 for r in rhos)} of {len(rhos)}")


if __name__ == "__main__":
    main()
