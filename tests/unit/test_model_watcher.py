"""Hot reload: follow the alias, refuse what cannot be served, keep serving the old model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from modelstore.registry import Registry
from tests.model_factory import publish
from vaecore import ChannelScaler, ConvVAE, Detector, Thresholds, VAEConfig
from worker.model_watcher import ModelWatcher

pytestmark = pytest.mark.unit


def watcher(root: Path, results: list[str]) -> ModelWatcher:
    return ModelWatcher(root, "default", "cpu", 60.0, lambda r, v, why: results.append(f"{r}:{v}"))


def test_the_alias_moving_swaps_in_the_new_version(tiny_detector: Detector, tmp_path: Path) -> None:
    publish(tiny_detector, tmp_path, "default")
    results: list[str] = []
    w = watcher(tmp_path, results)
    with capture_logs() as logs:
        assert w.check_once()
    [loaded] = [e for e in logs if e["event"] == "model_loaded"]
    assert (loaded["device"], loaded["scoring_path"]) == ("cpu", "host")  # on CUDA: device
    version = publish(tiny_detector, tmp_path, "default")
    assert w.check_once()
    current = w.current()
    assert current is not None
    assert current.version == version
    assert results == ["loaded:1", "loaded:2"]


def test_a_version_with_other_channels_is_refused(tiny_detector: Detector, tmp_path: Path) -> None:
    publish(tiny_detector, tmp_path, "default")
    results: list[str] = []
    w = watcher(tmp_path, results)
    w.check_once()
    import numpy as np

    other = Detector(
        ConvVAE(VAEConfig(n_channels=2, window=64, hidden=(8, 8))),
        ChannelScaler(np.zeros(2), np.ones(2)),
        ("x", "y"),
        thresholds=Thresholds(1.0, np.ones(2)),
    )
    publish(other, tmp_path, "default")
    assert not w.check_once()
    current = w.current()
    assert current is not None
    assert current.version == "1"
    assert results == ["loaded:1", "refused:2"]


def test_a_vanished_registry_keeps_the_current_model(
    tiny_detector: Detector, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    publish(tiny_detector, root, "default")
    w = watcher(root, [])
    w.check_once()
    shutil.rmtree(root)
    assert not w.check_once()
    current = w.current()
    assert current is not None
    assert current.version == "1"


def test_an_alias_to_a_missing_version_is_refused(tiny_detector: Detector, tmp_path: Path) -> None:
    publish(tiny_detector, tmp_path, "default")
    results: list[str] = []
    w = watcher(tmp_path, results)
    w.check_once()
    reg = Registry(tmp_path)
    reg._write_alias("default", "7", ["1", "7"])
    assert not w.check_once()
    assert results[-1].startswith("refused")


@pytest.mark.parametrize("precision", ["auto", "bf16"])
def test_the_precision_setting_reaches_every_loaded_version(
    tiny_detector: Detector, tmp_path: Path, precision: str
) -> None:
    publish(tiny_detector, tmp_path, "default")
    w = ModelWatcher(tmp_path, "default", "cpu", 60.0, precision=precision)
    assert w.check_once()
    current = w.current()
    assert current is not None and current.precision == precision
