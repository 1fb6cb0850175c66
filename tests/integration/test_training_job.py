"""The batch side end to end: train -> publish -> promote -> score -> evaluate -> gate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from modelstore.registry import Registry
from tests.integration.kafka_helpers import produce
from tests.model_factory import SAMPLE, SMD
from vaewatch.cli import main
from worker.replay import load_replay_tables, replay_series
from worker.settings import settings_from_cli

pytestmark = pytest.mark.integration


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_train_publish_promote_score_evaluate_and_gate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reg = str(tmp_path / "registry")
    common = ["--data", str(SMD), "--registry", reg, "--model", "smd", "--no-progress"]
    code, out = cli(capsys, "train", *common, "--epochs", "8", "--promote")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["version"] == "1"
    assert summary["gate"]["decision"] == "promoted"
    assert summary["metrics"]["test"]["auc_pr"] > 0.1  # 140 anomalous of 2000 rows: base rate 0.07
    report = Path(summary["report"])
    assert {p.name for p in report.glob("*.png")} == {"loss.png", "scores.png", "examples.png"}

    code, _ = cli(
        capsys,
        "score",
        "--registry",
        reg,
        "--model",
        "smd",
        "--data",
        str(SMD),
        "--out",
        str(tmp_path / "scores"),
    )
    assert code == 0
    with (tmp_path / "scores" / "smd" / "machine-1-2" / "scores.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2000
    assert list(rows[0])[:3] == ["timestamp", "score", "is_anomaly"]
    assert "corrected_dim_38" in rows[0]

    code, out = cli(
        capsys, "evaluate", "--registry", reg, "--model", "smd@1", "--data", str(SMD), "--no-vus"
    )
    assert code == 0
    evaluation = json.loads(out)
    assert evaluation["overall"]["auc_pr"] == pytest.approx(summary["metrics"]["test"]["auc_pr"])
    assert {"auc_pr", "vus_pr", "best_f1", "f1", "pa_f1_optimistic"} <= set(evaluation["overall"])

    code, out = cli(capsys, "models", "show", "--registry", reg, "--model", "smd")
    shown = json.loads(out)
    assert shown["production"] is True
    for key in ("window", "fitted_false_alarm_rate", "calibration_steps"):
        assert shown["thresholds"][key] == summary["thresholds"][key], key
    assert shown["thresholds"]["calibration_steps"] > 0


def test_the_gate_refuses_a_worse_candidate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A trained model beats an untrained, unsmoothed one by more than the tolerance.

    (Untrained but smoothed is no longer clearly worse on this easy artificial series:
    AUC-PR 0.89 vs 0.90 - the rolling mean alone finds its jump.)
    """
    reg = str(tmp_path / "registry")
    nab = str(SAMPLE / "nab")
    common = ["--data", nab, "--registry", reg, "--model", "nab", "--no-progress"]
    code, out = cli(capsys, "train", *common, "--promote")
    assert code == 0, out
    worse = ["--max-steps", "1", "--smoothing", "1"]
    code, out = cli(capsys, "train", *common, *worse, "--promote")
    assert code == 4, out
    gate = json.loads(out)["gate"]
    assert gate["decision"] == "kept"
    assert gate["candidate"] < gate["production"] - 0.02
    registry = Registry(Path(reg))
    assert registry.versions("nab") == ["1", "2"]
    assert registry.production("nab") == "1"

    code, out = cli(
        capsys, "models", "promote", "--registry", reg, "--model", "nab", "--version", "2"
    )
    assert code == 0
    code, out = cli(capsys, "models", "rollback", "--registry", reg, "--model", "nab")
    assert "production -> 1" in out
    code, out = cli(capsys, "models", "list", "--registry", reg, "--model", "nab")
    assert "nab@1  <- production" in out


def test_train_from_a_topic_keeps_only_windows_of_one_channel_set_and_reports_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kafka_bootstrap: str, topics: object
) -> None:
    """A topic of 1-channel NAB windows, 38-channel SMD windows and a broken message: the
    mix is refused, `--channels` picks NAB, a retrain takes the production model's channels."""
    topic = f"train-{tmp_path.name[-8:]}"
    tables = load_replay_tables([SAMPLE / "nab"], "train")
    settings = settings_from_cli({"kafka_bootstrap_servers": kafka_bootstrap})
    sent = replay_series(settings, tables, topic, window=128, stride=64)
    assert sent > 10
    smd = replay_series(settings, load_replay_tables([SMD], "test"), topic, window=128, limit=6)
    produce(kafka_bootstrap, topic, [(b"x", b"{not json")])
    reg = str(tmp_path / "registry")
    train = [
        *("train", "--from-topic", topic, "--since", "1h", "--bootstrap-servers", kafka_bootstrap),
        *("--registry", reg, "--model", "nab", "--epochs", "2", "--window", "64", "--no-progress"),
    ]

    code = main(train)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"vaewatch train: error: topic {topic!r} mixes 2 channel sets")
    assert not Registry(Path(reg)).versions("nab"), "nothing may be trained from a mix"

    for extra, channels_from in [(["--channels", "value"], "--channels"), ([], "production")]:
        code, out = cli(capsys, *train, *extra, "--promote")
        assert code in (0, 4), out
        summary = json.loads(out)
        used = summary["training_data"]["from_topic"]
        assert used["channels"] == ["value"]
        assert used["channels_from"].startswith(channels_from)
        assert used["windows_used"] == sent
        assert used["windows_skipped"] == {"channels_mismatch": smd, "not_json": 1}
        assert (
            summary["training_data"]["rows"]
            == len(tables[0].values) - (len(tables[0].values) - 128) % 64
        )
    assert used["channels_from"] == "production model nab@1"
