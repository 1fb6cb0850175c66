"""`make bench-quality`'s results file: only the full default run writes quality.json."""

from __future__ import annotations

import pytest

from benchmarks.quality import results_name

pytestmark = pytest.mark.unit


def test_only_the_full_default_run_writes_the_quoted_results() -> None:
    assert results_name(False, None, {}) == "quality.json"
    assert results_name(True, None, {}) == "quality-quick.json"
    assert results_name(False, None, {"seed": 1, "beta": 1.0}) == "quality-seed=1-beta=1.0.json"
    # A run on some datasets used to overwrite quality.json (or the override's full-run file).
    assert results_name(False, ["smd", "skab-valve1"], {}) == "quality-on-skab-valve1+smd.json"
    assert results_name(False, ["smd"], {"seed": 1}) == "quality-seed=1-on-smd.json"
