"""The scoring process (`VAEWATCH_SCORER=process`) against the scoring thread it replaces."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from structlog.testing import capture_logs

from kafkaio.records import InRecord
from schemas.messages import encode_window
from schemas.series_csv import read_series_csv
from tests.model_factory import SMD
from tests.unit.test_worker_loop import FakeSink, ScriptedSource, records
from vaecore import Detector
from worker.loop import WorkerLoop
from worker.pipeline import (
    ScoredBatch,
    Topics,
    decode_batch,
    encode_batch,
    score_batch,
    valid_windows,
)
from worker.scorer_process import ScorerError, ScorerProcess, choose_scorer
from worker.scorer_wire import detector_from, detector_message
from worker.state import SeriesStates

pytestmark = pytest.mark.unit
TOPICS = Topics("events", "corrected", "dlq", episodes="episodes", state="state")
START = datetime(2026, 11, 24, tzinfo=UTC)
NOW = datetime(2026, 11, 26, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scorer() -> Iterator[ScorerProcess]:
    process = ScorerProcess(torch.get_num_threads())
    yield process
    process.close()


def series_batches(detector: Detector, batches: int = 3) -> list[list[InRecord]]:
    """Three series that run on across batches (smoothing history), some missing points,
    windows of one, two and a half model windows (tiled), and one malformed message."""
    table = read_series_csv(SMD / "test.csv")
    rng = np.random.default_rng(7)
    offset = {"a": 0, "b": 0, "c": 0}
    out = []
    for b in range(batches):
        batch = []
        for j, (series, steps) in enumerate([("a", 64), ("b", 128), ("c", 160), ("a", 64)]):
            t0 = offset[series]
            base = {"a": 0, "b": 600, "c": 1200}[series]
            values = table.values[base + t0 : base + t0 + steps].copy()
            values[rng.random(values.shape) < 0.05] = np.nan  # missing readings
            values[rng.integers(steps), :] = np.nan  # a step with nothing observed
            offset[series] += steps
            start = START + timedelta(minutes=t0)
            raw = encode_window(f"{series}/{t0}", series, start, 60000, table.channels, values)
            batch.append(InRecord("in", j % 2, b * 10 + j, series.encode(), raw, 0))
        batch.append(InRecord("in", 0, b * 10 + 9, b"x", b"{not json", 0))
        out.append(batch)
    return out


def run_both(
    detector: Detector, scorer: ScorerProcess, batches: list[list[InRecord]]
) -> list[tuple[ScoredBatch, ScoredBatch]]:
    here, there = SeriesStates(), SeriesStates()
    out = []
    for records_ in batches:
        a = decode_batch(records_, detector, TOPICS, 1 << 22)
        b = decode_batch(records_, detector, TOPICS, 1 << 22)
        thread = score_batch(a, detector, TOPICS, states=here)
        remote = scorer.submit(detector, valid_windows(b))
        process = score_batch(b, detector, TOPICS, states=there, stateless=remote)
        out.append((thread, process))
    return out


def scored_arrays(batch: ScoredBatch) -> list[tuple[str, np.ndarray]]:
    """Every array and number of every scored window the worker reads, in input order:
    point scores and reconstruction at flagged points (the scoring process sends no more)."""
    out = []
    for scores, values, replaced in batch.scored.values():
        for name in ("raw_step", "step", "channel", "flagged"):
            out.append((name, getattr(scores, name)))
        out.append(("point", scores.point[scores.flagged]))
        out.append(("expected", scores.expected[scores.flagged]))
        out.append(("score", np.float64(scores.score)))
        out.append(("is_anomaly", np.bool_(scores.is_anomaly)))
        out += [("corrected", values), ("replaced", replaced)]
    return out


def test_process_scores_are_bit_identical_to_the_thread_path(
    tiny_detector: Detector, scorer: ScorerProcess
) -> None:
    detector = replace(tiny_detector, smoothing=24)  # step scores run on across windows
    pairs = run_both(detector, scorer, series_batches(detector))
    for thread, process in pairs:
        for (name, a), (_, b) in zip(scored_arrays(thread), scored_arrays(process), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), name  # bit for bit, NaN included
        out_a = encode_batch(thread, detector, TOPICS, now=lambda: NOW).records
        out_b = encode_batch(process, detector, TOPICS, now=lambda: NOW).records
        assert [(r.topic, r.key, r.value) for r in out_a] == [
            (r.topic, r.key, r.value) for r in out_b
        ]
    last = pairs[-1][0]
    assert any(np.isnan(s.point).any() for s, _, _ in last.scored.values())  # missing points
    alone = detector.score([v.values for v in valid_slots(last)])  # no history
    carried = [s.step for s, _, _ in last.scored.values()]
    assert all(a.step.tobytes() != c.tobytes() for a, c in zip(alone, carried, strict=True))
    assert sum(int(s.flagged.sum()) for b, _ in pairs for s, _, _ in b.scored.values()) > 0
    assert any(s.is_anomaly for b, _ in pairs for s, _, _ in b.scored.values())


def valid_slots(batch: ScoredBatch) -> list[Any]:
    return [slot for slot in batch.decoded.slots if id(slot) in batch.scored]


def test_a_detector_crosses_the_wire_whole(tiny_detector: Detector) -> None:
    """Every field the child scores with, bit for bit, without pickle."""
    odd = replace(tiny_detector, n_samples=2, score_kind="error", smoothing=5, sample_seed=3)
    odd.name, odd.version = "m", "7"
    back = detector_from(*detector_message(odd))
    windows = [read_series_csv(SMD / "test.csv").values[:100]]
    for name in ("channels", "n_samples", "stride", "score_kind", "smoothing", "sample_seed"):
        assert getattr(back, name) == getattr(odd, name), name
    assert (back.name, back.version, back.precision) == ("m", "7", odd.precision)
    a, b = odd.point_scores(windows)[0], back.point_scores(windows)[0]
    assert a.point.tobytes() == b.point.tobytes() and a.flagged.tobytes() == b.flagged.tobytes()


def perturbed(detector: Detector, version: str) -> Detector:
    """Another version: the same architecture, other weights."""
    other = copy.deepcopy(detector)
    with torch.no_grad():
        for p in other.model.parameters():
            p.mul_(1.1)
    other.version = version
    return other


def test_a_hot_swapped_model_scores_the_batches_after_the_swap(
    tiny_detector: Detector, scorer: ScorerProcess
) -> None:
    v2 = perturbed(tiny_detector, "v2")
    windows = [r.astype(np.float64) for r in read_series_csv(SMD / "test.csv").values[None, :64]]
    old = scorer.submit(tiny_detector, windows)()[0][0].raw_step
    new = scorer.submit(v2, windows)()[0][0].raw_step
    assert new.tobytes() == v2.point_scores(windows)[0].raw_step.tobytes()
    assert new.tobytes() != old.tobytes()

    source = ScriptedSource(records(tiny_detector, 8))
    sink = FakeSink(source.log)
    current = [tiny_detector]
    loop = WorkerLoop(
        source, sink, lambda: current[0], Topics("events", "corrected", "dlq"),
        max_batch=4, max_batch_wait_ms=0, max_message_bytes=1 << 22, flush_timeout_s=1.0,
        scorer=scorer,
    )  # fmt: skip
    original = loop._submit

    def swap_after_first(batch: list[InRecord], detector: Detector) -> object:
        scoring = original(batch, detector)
        current[0] = v2  # promoted while the first batch is in the child
        return scoring

    loop._submit = swap_after_first  # type: ignore[assignment,method-assign]
    loop.run(source.stop)
    v2_outputs = [
        b'"version":"v2"' in (r.value or b"") for r in sink.acked if r.topic == "corrected"
    ]
    assert v2_outputs == [False] * 4 + [True] * 4


def test_a_child_that_dies_fails_the_batch_and_nothing_is_committed(
    tiny_detector: Detector,
) -> None:
    process = ScorerProcess(1)
    try:
        source = ScriptedSource(records(tiny_detector, 8))
        loop = WorkerLoop(
            source, FakeSink(source.log), lambda: tiny_detector, Topics("e", "c", "d"),
            max_batch=4, max_batch_wait_ms=0, max_message_bytes=1 << 22, flush_timeout_s=1.0,
            scorer=process,
        )  # fmt: skip
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        with capture_logs() as logs, pytest.raises(ScorerError, match=r"exited.*SIGKILL"):
            loop.run(source.stop)
        assert source.committed == {}
        [failed] = [e for e in logs if e["event"] == "scorer_process_failed"]
        assert failed["log_level"] == "error" and "SIGKILL" in failed["reason"]
        assert ScorerError.exit_code != 0
    finally:
        process.close()


def test_a_dead_child_is_logged_once_however_many_batches_find_it_dead(
    tiny_detector: Detector,
) -> None:
    """The main thread's send and the scoring thread's wait can both meet the same dead
    child: each raises, one line is logged."""
    process = ScorerProcess(1)
    try:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process._process.join(10)
        windows = [np.zeros((tiny_detector.window, len(tiny_detector.channels)))]
        with capture_logs() as logs:
            for _ in range(3):
                with pytest.raises(ScorerError):
                    process.submit(tiny_detector, windows)()
        assert [e["event"] for e in logs].count("scorer_process_failed") == 1
    finally:
        process.close()


def test_an_error_in_the_child_fails_the_batch_with_its_cause(
    tiny_detector: Detector, scorer: ScorerProcess
) -> None:
    wrong = [np.zeros((64, 3))]  # 3 channels for a 38-channel model
    with pytest.raises(ScorerError, match="ValueError: window shape"):
        scorer.submit(tiny_detector, wrong)()


def test_close_and_a_killed_parent_leave_no_child() -> None:
    process = ScorerProcess(1)
    pid = process.pid
    process.close()
    assert pid is not None and not alive(pid)

    script = (
        "import sys, time; from worker.scorer_process import ScorerProcess\n"
        "p = ScorerProcess(1); print(p.pid, file=sys.stderr, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    assert parent.stderr is not None
    child = int(parent.stderr.readline())
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    parent.wait()
    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("setting", "device", "cpus", "cuda", "mode"),
    [
        ("auto", "auto", 2, False, "process"),
        ("auto", "cpu", 1, False, "thread"),
        ("auto", "auto", 16, True, "thread"),
        ("auto", "cuda", 16, True, "thread"),
        ("thread", "cpu", 2, False, "thread"),
        ("process", "cuda", 1, True, "process"),
    ],
)
def test_auto_chooses_the_process_on_a_cpu_with_two_cores(
    setting: str, device: str, cpus: int, cuda: bool, mode: str
) -> None:
    assert choose_scorer(setting, device, cpus, cuda) == mode
