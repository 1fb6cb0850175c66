"""The VUS-PR bridge to tsb-ad's own implementation (in benchmarks/.peers-venv)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from training.vus import peers_python, vus_pr_many

pytestmark = pytest.mark.unit
needs_tsb_ad = pytest.mark.skipif(
    peers_python() is None, reason="tsb-ad environment not built (make bench-quality)"
)


def test_without_the_peers_environment_vus_is_none_not_made_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAEWATCH_PEERS_PYTHON", str(tmp_path / "missing" / "python"))
    labels = np.zeros(100, dtype=int)
    labels[40:50] = 1
    assert vus_pr_many([(labels.astype(float), labels)]) == [None]


@needs_tsb_ad
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


@needs_tsb_ad
def test_our_vus_pr_is_the_one_tsb_ads_get_metrics_reports() -> None:
    rng = np.random.default_rng(1)
    labels = np.zeros(1500, dtype=int)
    labels[300:330] = 1
    labels[900:960] = 1
    score = labels * 0.5 + rng.random(1500)
    [ours] = vus_pr_many([(score, labels)], sliding_window=50)
    check = (
        "import sys, numpy as np; from TSB_AD.evaluation.metrics import get_metrics;"
        "d = np.load(sys.argv[1]); print(get_metrics(d['s'], d['l'], slidingWindow=50)['VUS-PR'])"
    )
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/x.npz", s=score, l=labels)
        out = subprocess.run(
            [str(peers_python()), "-c", check, f"{tmp}/x.npz"],
            capture_output=True,
            text=True,
            check=True,
        )
    assert ours == pytest.approx(float(out.stdout.strip().splitlines()[-1]), abs=1e-9)


def test_evaluate_says_why_vus_pr_is_null_without_the_tsb_ad_interpreter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training import cli

    monkeypatch.setenv("VAEWATCH_PEERS_PYTHON", str(tmp_path / "missing" / "python"))
    assert cli._vus_available() is False
    assert "VAEWATCH_PEERS_PYTHON" in capsys.readouterr().err
    assert cli._vus_note(False, skipped_on_request=False) == cli.VUS_SKIPPED
    assert cli._vus_note(False, skipped_on_request=True) == "skipped (--no-vus)"
