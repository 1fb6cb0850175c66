"""Where the worker's time goes: py-spy samples of a running worker, bucketed by stage.

`py-spy record --format raw` writes one line per distinct stack ("frame;frame;... count").
Two threads matter: the main thread (in `WorkerLoop.run`: poll, decode/validate, encode,
send, flush, commit, and waiting for the scorer) and the scoring thread (in `score_batch`:
the network and the sub-window aggregation). Every sample of each, idle or not, is charged
to the innermost stage it is inside (the stage list is ordered from specific to general):
the shares are of wall time, so waiting shows up. Other threads (the producer's sender,
the consumer's heartbeat, the model watcher) are left out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (stage, marker in a frame's text): the first marker found from the innermost frame wins
STAGES: list[tuple[str, str]] = [
    ("decode + validate", "decode_window ("),
    ("decode + validate", "align_to_model ("),
    ("wait for the scoring process", "ScorerProcess._result ("),
    ("score (network)", "Detector._forward ("),
    ("score (aggregate)", "Detector.point_scores ("),
    ("score (aggregate)", "Detector.score ("),
    ("smooth (window scores)", "Detector.window_scores ("),
    ("episodes", "_advance_episodes ("),
    ("state changelog", "SeriesStates."),
    ("correct (network + merge)", "Detector.correct ("),
    ("encode outputs", "encode_corrected ("),
    ("encode outputs", "encode_event ("),
    ("encode outputs", "merge_corrected ("),
    ("produce (send)", "KafkaProducer.send ("),
    ("flush: wait for acks", "KafkaProducer.flush ("),
    ("commit", "commit_offsets_sync ("),
    ("wait for the scoring thread", "Future.result ("),
    ("poll + fetch parsing", "KafkaConsumer.poll ("),
    ("batch bookkeeping", "process_batch ("),
    ("batch bookkeeping", "decode_batch ("),
    ("batch bookkeeping", "score_batch ("),
    ("batch bookkeeping", "encode_batch ("),
    ("loop bookkeeping", "WorkerLoop.run ("),
]


def py_spy() -> str | None:
    """The py-spy binary next to this interpreter (the venv's bin), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` for `seconds` into `out` (raw format); None without py-spy."""
    binary = py_spy()
    if binary is None:
        return None
    cmd = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    cmd += ["--format", "raw", "--threads", "--idle", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for stage, marker in STAGES:
            if marker in frame:
                return stage
    return "other"


def thread_of(frames: list[str]) -> str | None:
    if any("score_batch (" in f for f in frames):
        return "scoring"
    if any("WorkerLoop.run (" in f for f in frames):
        return "main"
    return None


def breakdown(raw: str) -> dict[str, dict[str, float]]:
    """Per thread ("main", "scoring"): share of its samples (wall time) per stage, largest first."""
    counts: dict[str, Counter[str]] = {"main": Counter(), "scoring": Counter()}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = thread_of(frames)
        if thread is not None:
            counts[thread][stage_of(frames)] += int(count)
    out: dict[str, dict[str, float]] = {}
    for thread, stages in counts.items():
        total = sum(stages.values())
        if total:
            out[thread] = {stage: n / total for stage, n in stages.most_common()}
    return out
