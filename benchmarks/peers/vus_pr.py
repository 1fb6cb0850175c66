"""Runs inside benchmarks/.peers-venv (numpy<2 + tsb-ad): VUS-PR with TSB-AD's own code.

usage: python vus_pr.py IN.npz N [SLIDING_WINDOW]
IN.npz holds score_i and label_i for i < N. Prints one JSON list of N floats (or null).
The sliding window defaults to TSB-AD's own choice, `find_length_rank(score, rank=1)` on the
series, as its benchmark runner does (on the data; here the score stands in when no data
is passed, which is what `training.vus` documents).
"""

import json
import sys

import numpy as np
from TSB_AD.evaluation.metrics import get_metrics


def sliding_window(score: np.ndarray) -> int:
    try:
        from TSB_AD.utils.slidingWindows import find_length_rank

        return int(find_length_rank(score, rank=1))
    except Exception:
        return 100


def main() -> None:
    data = np.load(sys.argv[1])
    n = int(sys.argv[2])
    fixed = int(sys.argv[3]) if len(sys.argv) > 3 else None
    out = []
    for i in range(n):
        score = data[f"score_{i}"].astype(float)
        label = data[f"label_{i}"].astype(int)
        if label.sum() == 0 or label.sum() == len(label):
            out.append(None)
            continue
        window = fixed or sliding_window(score)
        metrics = get_metrics(score, label, slidingWindow=window)
        out.append(float(metrics["VUS-PR"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
