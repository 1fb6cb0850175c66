"""Where the shipped alarms fall (footprint_dump.py's dumps): per family, the share of alarm
steps inside a labelled range, within the widest kernel's half-span of one ("spill": the
smoothing carrying an incident's score past its labelled ends) and elsewhere ("isolated").

    python benchmarks/study/footprint_screen.py DUMP_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vaecore.smoothing import Scale, Smoother
from vaecore.unscored import below_all


def load(path: Path) -> tuple[np.ndarray, np.ndarray, Smoother, float]:
    d = np.load(path)
    scales = tuple(Scale(int(b), int(p), float(c), float(s)) for b, p, c, s in d["scales"])
    return d["raw"], d["labels"].astype(bool), Smoother(scales), float(d["threshold"])


@dataclass(frozen=True)
class Dumped:
    """One dumped series with the shipped verdict: the backfill's score and its alarms."""

    family: str
    raw: np.ndarray
    labels: np.ndarray
    smoother: Smoother
    threshold: float
    score: np.ndarray
    alarm: np.ndarray
    cal_in: np.ndarray | None  # the calibration pool's in-sample part (newer dumps only)
    cal_val: np.ndarray | None  # and its held-out tail


def dumped(root: Path) -> Iterator[Dumped]:
    """Every series under `root` (one folder per family), in a stable order."""
    for path in sorted(root.glob("*/*.npz")):
        raw, labels, smoother, threshold = load(path)
        score = below_all(smoother.centred(raw))
        with np.load(path) as d:
            cal = (d["cal_in"], d["cal_val"]) if "cal_in" in d else (None, None)
        yield Dumped(
            path.parent.name, raw, labels, smoother, threshold, score, score > threshold, *cal
        )


def near(labels: np.ndarray, reach: int) -> np.ndarray:
    """Steps within `reach` of a labelled step (labelled steps included)."""
    index = np.flatnonzero(labels)
    out = np.zeros_like(labels)
    if len(index) == 0:
        return out
    lo = np.clip(np.arange(len(labels)) - reach, 0, None)
    hi = np.arange(len(labels)) + reach
    cum = np.concatenate([[0], np.cumsum(labels)])
    return (cum[np.minimum(hi + 1, len(labels))] - cum[lo]) > 0


def main() -> None:
    root = Path(sys.argv[1])
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5))
    for d in dumped(root):
        close = near(d.labels, max(s.lead for s in d.smoother.scales))
        spill = d.alarm & ~d.labels & close
        isolated = d.alarm & ~close
        inside = d.alarm & d.labels
        n = len(d.labels)
        row = np.array([inside.sum(), spill.sum(), isolated.sum(), d.labels.sum(), n]) / n
        sums[d.family] += row
        sums["overall"] += row
    print(
        "| family | inside | spill | isolated | labelled | spill share of false | alarm : labelled |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for family, (inside, spill, isolated, labelled, _) in sums.items():
        alarm = inside + spill + isolated
        print(
            f"| {family} | {inside / alarm:.2f} | {spill / alarm:.2f} | {isolated / alarm:.2f} | "
            f"{labelled / alarm:.2f} | {spill / (spill + isolated):.2f} | {alarm / labelled:.2f} |"
        )


if __name__ == "__main__":
    main()
