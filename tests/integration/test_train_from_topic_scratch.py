"""`train --from-topic` copies the topic into a `vaewatch-topic-*` directory: it must not stay."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

import training.cli
from tests.model_factory import SAMPLE
from vaewatch.cli import main
from vwbase.errors import UserInputError
from worker.replay import load_replay_tables, replay_series
from worker.settings import settings_from_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `tempfile` puts directories during the test, to see what is left there."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def topic(tmp_path: Path, kafka_bootstrap: str) -> str:
    name = f"scratch-{tmp_path.name[-8:]}"
    tables = load_replay_tables([SAMPLE / "nab"], "train")
    settings = settings_from_cli({"kafka_bootstrap_servers": kafka_bootstrap})
    assert replay_series(settings, tables, name, window=128, stride=128, limit=20) > 0
    return name


def train_from(topic: str, kafka_bootstrap: str, tmp_path: Path) -> int:
    return main(
        [
            "train",
            "--from-topic",
            topic,
            "--since",
            "1h",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--registry",
            str(tmp_path / "registry"),
            "--model",
            "m",
            "--no-progress",
        ]
    )


@pytest.mark.parametrize("outcome", ["published", "failed"])
def test_the_topic_copy_is_removed_however_training_ends(
    monkeypatch: pytest.MonkeyPatch,
    scratch: Path,
    topic: str,
    kafka_bootstrap: str,
    tmp_path: Path,
    outcome: str,
) -> None:
    seen: list[Path] = []

    def job(paths: list[Path], *args: Any) -> Any:
        seen.extend(paths)
        assert list(paths[0].rglob("train.csv")), "the copy exists while training runs"
        if outcome == "failed":
            raise UserInputError("training failed half-way")
        return type("Result", (), {"summary": {}, "exit_code": 0, "version": "1"})()

    monkeypatch.setattr(training.cli, "run_training_job", job)
    code = train_from(topic, kafka_bootstrap, tmp_path)
    assert code == (0 if outcome == "published" else 2)
    assert seen and seen[0].name.startswith("vaewatch-topic-")
    assert not seen[0].exists()
    assert not list(scratch.glob("vaewatch-topic-*"))
