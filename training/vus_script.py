"""Runs inside the tsb-ad interpreter (numpy<2 + tsb-ad): VUS-PR with TSB-AD's own code.

Not imported: `training.vus` runs this file with `$VAEWATCH_PEERS_PYTHON`.
usage: python vus_script.py IN.npz N [SLIDING_WINDOW]
IN.npz holds score_i, label_i and, optionally, data_i (the series' first channel) for i < N.
Prints one JSON list of N floats (or null).
The sliding window (VUS-PR's buffer) is TSB-AD's own choice, as its runners
(`Run_Detector_U.py`, `Run_Detector_M.py`) make it: `find_length_rank` of the series' first
channel, once per series, so every method scored on that series gets the same window. It
is never taken from a method's score: a smooth score would then buy itself a wider buffer.
A fixed SLIDING_WINDOW overrides it; without data_i the TSB-AD fallback of 100 is used.
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


def sliding_window(first_channel: np.ndarray) -> int:
    """TSB-AD's runners: `find_length_rank(data[:, 0].reshape(-1, 1), rank=1)`."""
    from TSB_AD.utils.slidingWindows import find_length_rank

    return int(find_length_rank(first_channel.reshape(-1, 1), rank=1))


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
        if fixed:
            window = fixed
        elif f"data_{i}" in data.files:
            window = sliding_window(data[f"data_{i}"].astype(float))
        else:
            window = 100
        *_, vus_pr = generate_curve(label, score, window, VERSION, THRESHOLDS)
        out.append(float(vus_pr))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
