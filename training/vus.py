"""VUS-PR from the TSB-AD benchmark's own code, run in a separate virtualenv.

`tsb-ad` pins numpy < 2 while this project uses numpy 2, so it lives in a separate
interpreter named by `VAEWATCH_PEERS_PYTHON` (the repository's `make bench-quality` builds
`benchmarks/.peers-venv`, and the tests and benchmarks point this variable at it). This
bridge writes the scores and labels to a temporary .npz, runs `vus_script.py` (shipped in
this package, next to this file) with that interpreter and reads the results back. Without
that interpreter it returns None for every series, and the evaluation reports
`vus_pr: null` rather than a number computed some other way.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().with_name("vus_script.py")
PEERS_PYTHON_ENV = "VAEWATCH_PEERS_PYTHON"


def peers_python() -> Path | None:
    """The tsb-ad interpreter `VAEWATCH_PEERS_PYTHON` names, if it is there."""
    named = os.environ.get(PEERS_PYTHON_ENV)
    return Path(named) if named and Path(named).exists() else None


def vus_pr_many(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    sliding_window: int | None = None,
    data: Sequence[np.ndarray] | None = None,
) -> list[float | None]:
    """VUS-PR per (score, label) pair.

    The buffer window is TSB-AD's `find_length_rank` of `data[i]` (the series' first
    channel; pass the same array for every method scored on that series), or
    `sliding_window` when given. Without either, TSB-AD's fallback of 100 steps.
    """
    python = peers_python()
    if python is None or not pairs:
        return [None] * len(pairs)
    with tempfile.TemporaryDirectory(prefix="vaewatch-vus-") as tmp:
        arrays = {}
        for i, (score, label) in enumerate(pairs):
            arrays[f"score_{i}"] = np.asarray(score, dtype=np.float64)
            arrays[f"label_{i}"] = np.asarray(label, dtype=np.int64)
            if data is not None:
                arrays[f"data_{i}"] = np.nan_to_num(np.asarray(data[i], dtype=np.float64))
        np.savez(Path(tmp) / "in.npz", **arrays)  # type: ignore[arg-type]
        cmd = [str(python), str(SCRIPT), str(Path(tmp) / "in.npz"), str(len(pairs))]
        if sliding_window:
            cmd.append(str(sliding_window))
        # stdout carries the result; stderr (progress bar, library warnings) goes to the user
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=3600, check=False)
        if done.returncode != 0:
            return [None] * len(pairs)
        values = json.loads(done.stdout.strip().splitlines()[-1])
    return [None if v is None else float(v) for v in values]
