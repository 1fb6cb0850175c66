"""Bad input on the command line: one line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from tests.model_factory import publish
from training.data import split_series
from training.job import labelled_tests
from vaecore import Detector
from vaewatch.cli import main
from vwbase.errors import UserInputError

pytestmark = pytest.mark.unit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.parent


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ("timestamp,a,label\n1,2\n", "fields"),
        ("timestamp,a\n1,2\n2,oops\n", "'oops' is not a number"),
        ("timestamp,a\n" + "".join(f"{i},{i}\n" for i in range(50)), "too short"),
    ],
)
def test_train_on_bad_csv_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, csv: str, expected: str
) -> None:
    data = write(tmp_path / "d" / "s" / "train.csv", csv)
    code, err = run(
        capsys, "train", "--data", str(data), "--registry", str(tmp_path / "r"), "--model", "m"
    )
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith("vaewatch train: error: ")
    assert expected in last
    assert "Traceback" not in err


def test_train_names_a_channel_never_observed_in_the_training_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = "".join(f"{i},{i % 7},,{i % 5}\n" for i in range(200))
    data = write(tmp_path / "d" / "s" / "train.csv", "timestamp,a,b,c\n" + rows)
    code, err = run(
        capsys, "train", "--data", str(data), "--registry", str(tmp_path / "r"), "--model", "m"
    )
    assert code == 2
    last = err.splitlines()[-1]
    assert "no observed value of channel(s) 'b'" in last
    assert "Traceback" not in err


@pytest.mark.parametrize(("window", "val_fraction"), [(64, 0.2), (32, 0.5), (16, 0.75)])
def test_too_short_says_how_many_rows_a_series_needs(window: int, val_fraction: float) -> None:
    def rows(n: int) -> np.ndarray:
        return np.zeros((n, 1))

    with pytest.raises(UserInputError, match=r"it needs (\d+)") as refused:
        split_series(rows(window), val_fraction, window)
    match = re.search(r"it needs (\d+)", str(refused.value))
    assert match is not None
    needed = int(match.group(1))
    split = split_series(rows(needed), val_fraction, window)
    assert len(split.train) >= window and len(split.val) >= window
    with pytest.raises(UserInputError):
        split_series(rows(needed - 1), val_fraction, window)


def test_train_on_an_empty_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, err = run(
        capsys, "train", "--data", str(tmp_path / "empty"), "--registry", "r", "--model", "m"
    )
    assert code == 2
    assert "no train.csv found" in err


def test_unknown_model_and_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_detector: Detector
) -> None:
    publish(tiny_detector, tmp_path, "m")
    code, err = run(capsys, "models", "show", "--registry", str(tmp_path), "--model", "nope")
    assert code == 2
    assert "unknown model 'nope'" in err
    data = str(Path(__file__).resolve().parents[2] / "data" / "sample" / "smd")
    code, err = run(
        capsys,
        "score",
        "--registry",
        str(tmp_path),
        "--model",
        "m@7",
        "--data",
        data,
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2
    assert "unknown version '7' of m" in err


def test_a_worker_setting_out_of_range_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAEWATCH_MAX_BATCH", "0")
    code, err = run(capsys, "worker")
    assert code == 2
    assert err.startswith("vaewatch worker: error: VAEWATCH_MAX_BATCH")


def test_secrets_never_appear_in_the_settings_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.settings import settings_from_cli

    monkeypatch.setenv("VAEWATCH_SASL_PASSWORD", "hunter2-secret")
    settings = settings_from_cli()
    assert "hunter2-secret" not in str(settings.safe_dump())
    assert "hunter2-secret" not in repr(settings)
    from kafkaio.client import security_kwargs

    assert security_kwargs(settings)["sasl_plain_password"] == "hunter2-secret"


def test_log_level_comes_from_the_environment_and_a_bad_one_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAEWATCH_LOG_LEVEL", "LOUD")
    with pytest.raises(SystemExit) as exc:
        main(["schemas", "export", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "VAEWATCH_LOG_LEVEL" in capsys.readouterr().err
    monkeypatch.setenv("VAEWATCH_LOG_LEVEL", "warning")
    assert main(["schemas", "export", "--out", str(tmp_path)]) == 0


def test_worker_help_lists_every_setting_and_the_log_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kafkaio.settings import env_var
    from worker.settings import WorkerSettings

    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    text = capsys.readouterr().out
    for name in [*WorkerSettings.model_fields, "log_level"]:
        assert env_var(name) in text, f"{env_var(name)} missing from worker --help"


def test_a_test_series_shorter_than_the_window_is_left_out_of_evaluation_with_a_warning(
    tmp_path: Path,
) -> None:
    def labelled(rows: int) -> str:
        return "timestamp,a,label\n" + "".join(
            f"{i},{i % 7},{int(i > rows // 2)}\n" for i in range(rows)
        )

    write(tmp_path / "d" / "long" / "test.csv", labelled(100))
    write(tmp_path / "d" / "short" / "test.csv", labelled(20))
    with capture_logs() as logs:
        tests = labelled_tests([tmp_path / "d"], ("a",), window=64)
    assert [t.series for t in tests] == ["long"]
    skipped = [e for e in logs if e["event"] == "test_series_not_evaluated"]
    assert len(skipped) == 1
    assert skipped[0]["rows"] == 20 and skipped[0]["path"].endswith("short/test.csv")
