"""`make run`'s window verdicts offline (docs/quality.md, "Window verdict"): the bundled
sample's test series in 128-step windows every 8 rows, scored in order through
`Detector.score` with a `ScoreHistory` as the worker does (reproduces make run's events),
then the three verdicts: any step (shipped), the new steps only, each scale past its lead.
Usage (repo root, after `make run` trained models/default/1):
  .venv/bin/python benchmarks/study/window_verdict_sample.py [models/default/1]
"""
import sys
from pathlib import Path

import numpy as np

from modelstore.artifact import load_artifact
from schemas.series_csv import read_series_csv
from vaecore.smoothing import ScoreHistory, SeriesLink
from worker.replay import expected_window_labels

W, S = 128, 8
det = load_artifact(Path(sys.argv[1] if len(sys.argv) > 1 else "models/default/1"), device="cpu")
table = read_series_csv(Path("data/sample/smd/machine-1-2/test.csv"))
values = np.asarray(table.values, dtype=np.float32)
starts = list(range(0, len(values) - W + 1, S))
scored = det.score(
    [values[s : s + W] for s in starts], [SeriesLink("a", s, s + W) for s in starts], ScoreHistory()
)
truth = expected_window_labels(table, W, S).astype(bool)
th = det.active_thresholds.window
raw = np.full(len(values), np.nan)
for s, r in zip(starts, scored, strict=True):
    raw[s : s + W] = r.raw_step
per_scale = [(sc.standardise(sc.smooth(raw)), sc.lead) for sc in det.scales]


def report(name: str, flags: np.ndarray) -> None:
    tp = int((flags & truth).sum())
    print(f"{name:40} events {int(flags.sum()):4}  window P {tp / flags.sum():.2f}  R {tp / truth.sum():.2f}")


report("any step (shipped, from the stream)", np.array([r.is_anomaly for r in scored]))
report("new steps only (the last 8)", np.array([np.nanmax(r.step[W - S :]) > th for r in scored]))
report(
    "each scale past its lead",
    np.array([max(np.nanmax(z[s + min(lead, W - 1) : s + W]) for z, lead in per_scale) > th for s in starts]),
)
