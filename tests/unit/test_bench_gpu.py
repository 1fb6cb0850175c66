"""`python -m benchmarks.gpu` on CPU: the compute section end to end (CI has no GPU), its
stage timing leaves the scores alone, and the speed helpers it shares with `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from kafka.partitioner.default import murmur2

from benchmarks.gpu import (
    PATHS,
    PRECISIONS,
    WORKER_SUMS,
    StagedDetector,
    latency_cell,
    parse_shape,
    score_and_correct,
    score_pass,
    where_latency_goes,
    worker_sums,
)
from benchmarks.speed import (
    build_detector,
    drain_rate,
    latency_ms,
    messages,
    synthetic,
    window_id,
    window_key,
)
from vaecore.device import autocast_for

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SHAPES = ("128x1", "128x8", "128x38")


def test_quick_cpu_run_prints_one_row_per_shape_path_precision_and_batch(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--quick", "--skip-worker"]
    cmd += ["--batches", "8,16", "--timing-s", "0.01", "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if "| score+correct (" in line]
    expected = {
        (s, f"score+correct ({path})", p, b)
        for s in SHAPES
        for path in PATHS
        for p in PRECISIONS
        for b in ("8", "16")
    }
    assert {tuple(c.strip() for c in r.split("|")[1:5]) for r in rows} == expected
    assert done.stdout.rstrip().splitlines()[-1].startswith("(short)")  # the table comes last
    results = json.loads(out.read_text())
    assert results["device"] == "cpu"
    assert "worker" not in results
    assert len(results["compute"]) == len(expected)
    for agreement in results["path_agreement"]:  # on one CPU the two paths agree closely
        assert agreement["flagged"] > 0 and agreement["flagged_differ"] == 0, agreement
        assert agreement["replaced_differ"] == 0 and agreement["raw_step_max_rel"] < 1e-4
    for row in results["compute"]:
        for key in ("windows_per_s", "subwindows_per_s", "network_alone_windows_per_s"):
            assert row[key] > 0, (row, key)
        assert row["subwindows_per_window"] >= 2  # 128 steps = 2 tiles of 64, plus correction
        assert row["shares"]["network"] > 0
        assert sum(row["shares"].values()) == pytest.approx(1.0, abs=1e-6)


def test_staged_detector_times_every_stage_and_scores_the_same() -> None:
    detector = build_detector(128, 2, device="cpu")
    windows = list(synthetic(6, 128, 2, seed=5))
    staged = StagedDetector.of(detector)
    plain_scores = detector.score(windows)
    staged_scores = staged.score(windows)
    for a, b in zip(plain_scores, staged_scores, strict=True):
        np.testing.assert_array_equal(a.point, b.point)
    assert set(staged.stage_s) == {"host_prepare", "h2d", "network", "d2h"}
    assert staged.subwindows == 6 * 2  # 128 steps = 2 tiles of the 64-step model
    assert score_pass(detector, windows).shape == (12, 64, 2)
    for path in PATHS:  # the correction passes go through the same network stage
        staged.reset()
        score_and_correct(staged, windows, path)
        assert staged.subwindows >= 12 and staged.stage_s["network"] > 0


def test_precision_fp32_and_bf16_on_cpu_and_unknown_refused() -> None:
    x = torch.ones(4, 4)
    with autocast_for(torch.device("cpu"), "fp32"):
        assert (x @ x).dtype == torch.float32
    with autocast_for(torch.device("cpu"), "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_for(torch.device("cpu"), "fp8")
    detector = build_detector(128, 1, device="cpu")
    with pytest.raises(ValueError, match="unknown precision"):
        type(detector)(detector.model, detector.scaler, detector.channels, precision="half")


def test_drain_rate_counts_from_the_given_time_and_latency_only_the_given_ids() -> None:
    stamps = [0, 500, 1000, 1000, 1100, 1200, 1200, 1300, 1400, 1500]  # batches share one
    rate, counted = drain_rate(stamps, since_ms=1000)
    assert counted == 6  # the two at 1000 were done before the clock started
    assert rate == pytest.approx(6 / 0.5)
    inputs = [("a", 100), ("b", 200), ("old", 0)]
    outputs = [("old", 50), ("a", 150), ("b", 260)]
    p50, p99 = latency_ms(inputs, outputs, {"a", "b"})
    assert (p50, round(p99, 1)) == (55.0, 59.9)


def test_shapes_parse() -> None:
    assert parse_shape("128x38") == (128, 38)


@pytest.mark.parametrize("prefix", ["", "lat50-"])
def test_benchmark_windows_spread_over_every_partition(prefix: str) -> None:
    """A latency run's windows (ids with a prefix) must reach every worker of a group: the
    old key, bytes 30-40 of the message, was the prefix itself, so one partition got all."""
    raw = messages(400, 16, 1, prefix)
    keys = [window_key(r) for r in raw]
    assert keys[:2] == [window_id(0, prefix).encode(), window_id(1, prefix).encode()]
    counts = np.bincount([(murmur2(k) & 0x7FFFFFFF) % 4 for k in keys], minlength=4)
    assert counts.min() > 400 / 4 * 0.7, counts  # each partition near its even share


def test_latency_runs_read_where_the_time_went_from_the_workers_own_metrics() -> None:
    """worker_sums adds the histograms of every worker's /metrics (a silent one counts 0);
    where_latency_goes turns the difference over a run into per-batch means."""
    from worker.broker import free_port
    from worker.observability import Health, Metrics, serve

    metrics, port = Metrics(), free_port()
    server = serve(port, metrics, Health())
    try:
        metrics.batch_size.observe(4096)  # before the run: must not count
        metrics.batch_seconds.observe(9.0)
        metrics.end_to_end.observe(60.0)
        before = worker_sums([port, free_port()])  # the second port: nobody listening
        for size, batch_s, score_s in ((100, 0.2, 0.05), (300, 0.4, 0.15)):
            metrics.batch_size.observe(size)
            metrics.batch_seconds.observe(batch_s)
            metrics.scoring_seconds.observe(score_s)
        for age_s in (0.5, 0.7, 0.9):
            metrics.end_to_end.observe(age_s)
        after = worker_sums([port])
    finally:
        server.shutdown()
    assert set(before) == set(WORKER_SUMS) and before["batches"] == 1
    went = where_latency_goes(before, after)
    assert went["batches"] == 2 and went["mean_batch"] == pytest.approx(200)
    assert went["batch_ms"] == pytest.approx(300) and went["scoring_ms"] == pytest.approx(100)
    assert went["end_to_end_ms"] == pytest.approx(700)


def test_latency_cell_names_the_workers_batches_when_it_has_them() -> None:
    lat: dict[str, Any] = {"p50": 344.0, "p99": 562.0, "offered_per_s": 7663.3}
    assert latency_cell(lat) == "344 / 562 ms (7,663/s)"
    lat["workers"] = {"batches": 83, "mean_batch": 369.8, "batch_ms": 230.6}
    assert latency_cell(lat) == "344 / 562 ms (7,663/s; batches of 370 in 231 ms)"
    assert latency_cell(None) == ""
