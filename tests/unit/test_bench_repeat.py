"""make bench's repetitions of the CPU bound's parts and the default worker
(`benchmarks.speed.median_repeat`): medians per part, the worker's cores from its median drain."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.speed import median_repeat

pytestmark = pytest.mark.unit


def repetition(io: float, compute_ms: float, worker: float, worker_cores: float) -> dict[str, Any]:
    return {
        "codec_us_per_window": 100.0,
        "compute_ceiling": 5000.0,
        "best_batch": 256,
        "compute_cpu_ms_per_window": compute_ms,
        "io_ceiling": io,
        "io_cpu_ms_per_window": 0.3,
        "worker_process_scorer": worker,
        "worker_process_scorer_peak_rss_mb": 900.0 + worker / 100,
        "cores_used_process_scorer": {"worker": worker_cores, "scorer": 0.5},
    }


def test_each_part_is_its_median_and_the_cores_come_from_the_median_drain() -> None:
    repeats = [
        repetition(io=3000.0, compute_ms=0.25, worker=2500.0, worker_cores=0.7),
        repetition(io=4000.0, compute_ms=0.21, worker=1800.0, worker_cores=0.5),
        repetition(io=3500.0, compute_ms=0.30, worker=2100.0, worker_cores=0.6),
    ]
    row = median_repeat(repeats)
    assert row["io_ceiling"] == 3500.0
    assert row["compute_cpu_ms_per_window"] == 0.25, "each part's own median, not one run's"
    assert row["worker_process_scorer"] == 2100.0
    assert row["cores_used_process_scorer"] == {"worker": 0.6, "scorer": 0.5}
    assert row["worker_process_scorer_peak_rss_mb"] == 925.0, "the peak over all drains"
    assert row["repeats"]["worker_process_scorer"] == [2500.0, 1800.0, 2100.0]
    assert row["best_batch"] == 256


def test_one_repetition_is_that_run() -> None:
    one = repetition(io=3000.0, compute_ms=0.25, worker=2500.0, worker_cores=0.7)
    row = median_repeat([one])
    assert row["io_ceiling"] == 3000.0
    assert row["worker_process_scorer"] == 2500.0
    assert row["cores_used_process_scorer"] == one["cores_used_process_scorer"]


def test_each_worker_row_takes_the_cores_of_its_own_median_drain() -> None:
    rows = []
    for rate, default, cores in (
        (2500.0, 3000.0, 0.7),
        (1800.0, 3400.0, 0.5),
        (2100.0, 2600.0, 0.6),
    ):
        r = repetition(io=3000.0, compute_ms=0.25, worker=rate, worker_cores=cores)
        r |= {
            "worker_auto": default,
            "worker_auto_peak_rss_mb": default / 10,
            "cores_used_auto": {"worker": 0.0, "processes": default / 2000},
        }
        rows.append(r)
    row = median_repeat(rows)
    assert row["worker_process_scorer"] == 2100.0
    assert row["worker_auto"] == 3000.0, "its own median, not the process worker's drain"
    assert row["cores_used_auto"] == {"worker": 0.0, "processes": 1.5}
    assert row["worker_auto_peak_rss_mb"] == 340.0
