"""Runs inside benchmarks/.peers-venv (numpy<2 + tsb-ad): VUS-PR with TSB-AD's own code.

usage: python vus_pr.py IN.npz N [SLIDING_WINDOW]
IN.npz holds score_i and label_i for i < N. Prints one JSON list of N floats (or null).
The sliding window defaults to TSB-AD's own choice, `find_length_rank(score, rank=1)` on the
series, as its benchmark runner does (on the data; here the score stands in when no data
is passed, which is what `training.vus` documents).
VUS-PR comes from `generate_curve`, the very call `get_metrics` makes for it, without the
threshold-dependent metrics `get_metrics` also computes (R-based F1 and Affiliation-F
dominate its run time and are not used here). Progress goes to stderr.
"""

import json
import sys

import numpy as np
from tqdm import tqdm
from TSB_AD.evaluation.basic_metrics import generate_curve

VERSION, THRESHOLDS = "opt", 250  # get_metrics' defaults


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
    for i in tqdm(range(n), desc="VUS-PR", unit="series", file=sys.stderr):
        score = data[f"score_{i}"].astype(float)
        label = data[f"label_{i}"].astype(int)
        if label.sum() == 0 or label.sum() == len(label):
            out.append(None)
            continue
        window = fixed or sliding_window(score)
        *_, vus_pr = generate_curve(label, score, window, VERSION, THRESHOLDS)
        out.append(float(vus_pr))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
