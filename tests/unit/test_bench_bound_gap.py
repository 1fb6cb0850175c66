"""make bench's split of a worker's shortfall from the CPU bound into CPU efficiency and
utilisation (`benchmarks.speed.bound_gap`)."""

from __future__ import annotations

import pytest

from benchmarks.speed import bound_gap

pytestmark = pytest.mark.unit


def test_the_two_factors_multiply_to_the_ratio_to_the_bound() -> None:
    cores_used = {"worker": 0.65, "scorer": 0.5, "broker": 0.13, "reader": 0.11}
    gap = bound_gap(3750.0, cores_used, bound=8321.0, cores=2)
    assert gap["cpu_efficiency"] * gap["utilisation"] == pytest.approx(3750.0 / 8321.0)
    assert gap["utilisation"] == pytest.approx(1.28 / 2), "the benchmark's reader counted"
    assert gap["cpu_ms_per_window"] == pytest.approx(1.28 / 3750.0 * 1000)
    assert gap["bound_cpu_ms_per_window"] == pytest.approx(2 / 8321.0 * 1000)


def test_a_run_that_spends_the_bounds_cpu_on_every_core_is_at_the_bound() -> None:
    # 2 cores at 1,000 windows/s each costing 2 CPU ms: what the bound says, nothing idle
    gap = bound_gap(1000.0, {"worker": 1.5, "broker": 0.5}, bound=1000.0, cores=2)
    assert gap["cpu_efficiency"] == pytest.approx(1.0)
    assert gap["utilisation"] == pytest.approx(1.0)


def test_extra_cpu_a_window_shows_as_efficiency_below_one_not_as_idle_cores() -> None:
    # every core busy, but each window costs twice the bound's CPU: half the bound's rate
    gap = bound_gap(500.0, {"worker": 2.0}, bound=1000.0, cores=2)
    assert gap["cpu_efficiency"] == pytest.approx(0.5)
    assert gap["utilisation"] == pytest.approx(1.0)
