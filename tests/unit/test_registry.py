"""The model registry: atomic, immutable, ordered versions; an alias with history."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelstore.artifact import load_artifact
from modelstore.registry import TMP_PREFIX, Registry
from tests.model_factory import publish
from vaecore import Detector
from vwbase.errors import ModelError

pytestmark = pytest.mark.unit


def test_versions_are_ordered_integers_and_manifest_is_stamped(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    for _ in range(3):
        publish(tiny_detector, tmp_path, "m", promote=False)
    reg = Registry(tmp_path)
    assert reg.versions("m") == ["1", "2", "3"]
    loaded = load_artifact(reg.resolve("m@2").path, "cpu")
    assert (loaded.name, loaded.version) == ("m", "2")


def test_concurrent_publishes_never_clobber(tiny_detector: Detector, tmp_path: Path) -> None:
    publish(tiny_detector, tmp_path, "seed", promote=False)
    artifact = Registry(tmp_path).resolve("seed@1").path
    reg = Registry(tmp_path)
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(reg.publish("m", artifact))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got, key=int) == ["1", "2", "3", "4", "5", "6"]
    assert not list((tmp_path / "m").glob(f"{TMP_PREFIX}*"))


def test_promote_and_rollback_follow_the_history(tiny_detector: Detector, tmp_path: Path) -> None:
    for _ in range(3):
        publish(tiny_detector, tmp_path, "m", promote=True)
    reg = Registry(tmp_path)
    assert reg.production("m") == "3"
    token = reg.alias_token("m")
    assert reg.rollback("m") == "2"
    assert reg.resolve("m").version == "2"
    assert reg.alias_token("m") != token
    reg.promote("m", "3")
    assert reg.production("m") == "3"


def test_unknown_model_or_version_is_a_one_line_error(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    publish(tiny_detector, tmp_path, "m", promote=False)
    reg = Registry(tmp_path)
    with pytest.raises(ModelError, match="unknown model 'x'"):
        reg.resolve("x")
    with pytest.raises(ModelError, match="unknown version '9' of m"):
        reg.resolve("m@9")
    with pytest.raises(ModelError, match="no production version"):
        reg.resolve("m")
    with pytest.raises(ModelError, match="no earlier production"):
        reg.rollback("m")


def test_a_crashed_publication_is_invisible(tmp_path: Path) -> None:
    (tmp_path / "m" / f"{TMP_PREFIX}dead").mkdir(parents=True)
    assert Registry(tmp_path).versions("m") == []
