"""The VUS-PR bridge to tsb-ad's own implementation (in benchmarks/.peers-venv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.vus import peers_python, vus_pr_many

pytestmark = pytest.mark.unit


def test_without_the_peers_environment_vus_is_none_not_made_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAEWATCH_PEERS_PYTHON", str(tmp_path / "missing" / "python"))
    labels = np.zeros(100, dtype=int)
    labels[40:50] = 1
    assert vus_pr_many([(labels.astype(float), labels)]) == [None]


@pytest.mark.skipif(
    peers_python() is None, reason="tsb-ad environment not built (make bench-quality)"
)
def test_tsb_ad_vus_pr_ranks_a_perfect_score_far_above_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros(2000, dtype=int)
    labels[500:540] = 1
    labels[1500:1520] = 1
    perfect, noise = vus_pr_many(
        [(labels + 0.01 * rng.random(2000), labels), (rng.random(2000), labels)]
    )
    assert perfect is not None
    assert noise is not None
    assert perfect > 0.95
    assert noise < 0.2
