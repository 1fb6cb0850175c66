"""Every sub-command, run as a user runs it, with bad arguments: exit 2, one line, no traceback.

The cases named in issue 15, and at least one per sub-command, run as real
`python -m vaewatch ...` processes, so what is checked is exactly what a user sees (stderr
as printed, the exit status the shell gets); more cases of the same checks run in this
process. Every rejection must happen before any work starts: no case reads data, trains, or
reaches a broker (the bootstrap address is a closed port; a case that got that far would
train and exit 0, or still be waiting after 60 s, and fail).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
NAB = str(REPO / "data" / "sample" / "nab")
TRAIN = ["train", "--data", NAB, "--registry", "{dir}/reg", "--model", "m", "--no-progress"]
SCORE = ["--registry", "{registry}", "--model", "m", "--data", NAB]
REPLAY = ["replay", "--data", NAB, "--topic", "t"]
MODELS = ["--registry", "{registry}", "--model", "m"]

# id -> (argv with {file} / {dir} / {registry} placeholders, extra environment).
# Run as processes: every case named in issue 15 and at least one per sub-command.
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    # train: every value checked before the data is read
    "train-window-3": ([*TRAIN, "--window", "3"], {}),
    "train-registry-is-a-file": ([*TRAIN, "--registry", "{file}"], {}),
    "train-false-alarm-rate-2": ([*TRAIN, "--false-alarm-rate", "2"], {}),
    "train-val-fraction-negative": ([*TRAIN, "--val-fraction", "-0.5"], {}),
    "train-val-fraction-0": ([*TRAIN, "--val-fraction", "0"], {}),
    "train-data-and-topic": ([*TRAIN, "--from-topic", "t"], {}),
    "train-bad-topic": (["train", "--from-topic", "bad topic!", *TRAIN[3:]], {}),
    "train-channels-without-topic": ([*TRAIN, "--channels", "value"], {}),
    # score / evaluate
    "score-out-is-a-file": (["score", *SCORE, "--out", "{file}"], {}),
    "evaluate-registry-is-a-file": (["evaluate", *SCORE, "--registry", "{file}"], {}),
    # worker: settings from flags and the environment, checked before any connection
    "worker-registry-is-a-file": (["worker"], {"VAEWATCH_REGISTRY": "{file}"}),
    "worker-max-batch-0": (["worker"], {"VAEWATCH_MAX_BATCH": "0"}),
    "worker-bad-input-topic": (["worker", "--input-topic", "bad topic!"], {}),
    "worker-missing-ca-file": (
        ["worker"],
        {"VAEWATCH_SECURITY_PROTOCOL": "SSL", "VAEWATCH_SSL_CAFILE": "{dir}/ca.crt"},
    ),
    "worker-model-with-at": (["worker", "--model", "m@1"], {}),
    "worker-processes-0": (["worker", "--processes", "0"], {}),
    "worker-processes-not-a-number": (["worker"], {"VAEWATCH_PROCESSES": "many"}),
    # replay
    "replay-window-0": ([*REPLAY, "--window", "0"], {}),
    "tail-bad-topic": (["tail", "--topic", "bad topic!"], {}),
    "tail-max-0": (["tail", "--max", "0"], {}),
    "replay-bad-topic": ([*REPLAY, "--topic", "bad topic!"], {}),
    "replay-stride-negative": ([*REPLAY, "--stride", "-5"], {}),
    "replay-stride-0": ([*REPLAY, "--stride", "0"], {}),
    "replay-rate-negative": ([*REPLAY, "--rate", "-1"], {}),
    # models
    "models-list-registry-is-a-file": (["models", "list", *MODELS, "--registry", "{file}"], {}),
    "models-show-bad-version": (["models", "show", *MODELS, "--version", "x"], {}),
    "models-promote-without-version": (["models", "promote", *MODELS], {}),
    "models-rollback-hidden-name": (["models", "rollback", *MODELS, "--model", ".m"], {}),
    # broker, schemas, the top level
    "broker-port-80000": (["broker", "--port", "80000"], {}),
    "schemas-export-out-is-a-file": (["schemas", "export", "--out", "{file}"], {}),
    "unknown-command": (["fly"], {}),
}
# More of the same, run in this process (each process costs seconds of imports): the
# validators' other refusals and the later, pre-work checks of the handlers.
IN_PROCESS_CASES: dict[str, list[str]] = {
    "train-window-0": [*TRAIN, "--window", "0"],
    "train-registry-under-a-file": [*TRAIN, "--registry", "{file}/reg"],
    "train-false-alarm-rate-0": [*TRAIN, "--false-alarm-rate", "0"],
    "train-val-fraction-1": [*TRAIN, "--val-fraction", "1"],
    "train-val-fraction-nan": [*TRAIN, "--val-fraction", "nan"],
    "train-epochs-0": [*TRAIN, "--epochs", "0"],
    "train-seed-negative": [*TRAIN, "--seed", "-1"],
    "train-tolerance-negative": [*TRAIN, "--tolerance", "-1"],
    "train-tolerance-inf": [*TRAIN, "--tolerance", "inf"],
    "train-n-samples-negative": [*TRAIN, "--n-samples", "-2"],
    "train-max-windows-0": [*TRAIN, "--max-windows", "0"],
    "train-device-unknown": [*TRAIN, "--device", "tpu"],
    "train-model-with-slash": [*TRAIN, "--model", "a/b"],
    "train-no-data": ["train", "--registry", "{dir}/reg", "--model", "m"],
    "train-data-missing": [*TRAIN, "--data", "{dir}/nothing-here"],
    "train-since-without-unit": ["train", "--from-topic", "t", "--since", "7", *TRAIN[3:]],
    "train-since-zero": ["train", "--from-topic", "t", "--since", "0d", *TRAIN[3:]],
    "score-registry-missing": ["score", *SCORE, "--registry", "{dir}/none", "--out", "{dir}"],
    "score-version-not-a-number": ["score", *SCORE, "--model", "m@x", "--out", "{dir}"],
    "score-version-0": ["score", *SCORE, "--model", "m@0", "--out", "{dir}"],
    "score-unknown-model": ["score", *SCORE, "--out", "{dir}/o"],
    "score-out-under-a-file": ["score", *SCORE, "--out", "{file}/o"],
    "evaluate-device-unknown": ["evaluate", *SCORE, "--device", "gpu"],
    "replay-limit-0": [*REPLAY, "--limit", "0"],
    "replay-rate-nan": [*REPLAY, "--rate", "nan"],
    "replay-window-not-a-number": [*REPLAY, "--window", "ten"],
    "replay-window-longer-than-series": [*REPLAY, "--window", "100000"],
    "replay-data-missing": [*REPLAY, "--data", "{dir}/nothing-here"],
    "models-list-unknown-model": ["models", "list", *MODELS],
    "models-show-version-0": ["models", "show", *MODELS, "--version", "0"],
    "models-unknown-action": ["models", "delete", *MODELS],
    "broker-port-0": ["broker", "--port", "0"],
    "broker-port-negative": ["broker", "--port", "-1"],
    "schemas-export-no-action": ["schemas"],
    "bad-log-level": ["--log-level", "LOUD", "schemas", "export", "--out", "{dir}"],
}
PARALLEL = min(4, os.cpu_count() or 1)
CUDA_CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "train-device-cuda-without-cuda": ([*TRAIN, "--device", "cuda"], {}),
    "worker-device-cuda-without-cuda": (["worker"], {"VAEWATCH_DEVICE": "cuda"}),
}


def _places(tmp_path: Path) -> dict[str, str]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    (tmp_path / "registry").mkdir(exist_ok=True)
    return {"file": str(a_file), "dir": str(tmp_path), "registry": str(tmp_path / "registry")}


def _fill(text: str, places: dict[str, str]) -> str:
    return text.format(**places)


def run_vaewatch(
    argv: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    places = _places(tmp_path)
    full_env = {
        **os.environ,
        "VAEWATCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # discard port: nothing answers
        "VAEWATCH_METRICS_PORT": "0",
        "VAEWATCH_REGISTRY": str(tmp_path / "registry"),
        "OMP_NUM_THREADS": "1",
        **{k: _fill(v, places) for k, v in env.items()},
    }
    command = [sys.executable, "-m", "vaewatch", *[_fill(a, places) for a in argv]]
    try:
        return subprocess.run(
            command, env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:  # it started working instead of refusing
        return subprocess.CompletedProcess(command, -1, "", "still running after 60 s")


@pytest.fixture(scope="module")
def processes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """The selected cases' processes, a few at a time: each spends seconds importing
    (torch), so on a machine with free cores the table takes a fraction of one by one."""
    selected: list[str] = [
        str(item.callspec.params["case"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_bad_arguments_exit_2_with_one_line_and_no_traceback"
    ]

    places = {case: tmp_path_factory.mktemp(case) for case in selected}  # not thread-safe

    def run(case: str) -> subprocess.CompletedProcess[str]:
        argv, env = CASES[case]
        return run_vaewatch(argv, env, places[case])

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return dict(zip(selected, pool.map(run, selected), strict=True))


def _assert_one_line_exit_2(result: subprocess.CompletedProcess[str]) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vaewatch"), lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments_exit_2_with_one_line_and_no_traceback(
    case: str, processes: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    _assert_one_line_exit_2(processes[case])


@pytest.mark.parametrize("case", sorted(IN_PROCESS_CASES))
def test_more_bad_arguments_exit_2_with_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaewatch.cli import main

    monkeypatch.chdir(tmp_path)
    places = _places(tmp_path)
    try:
        code = main([_fill(a, places) for a in IN_PROCESS_CASES[case]])
    except SystemExit as exc:  # argparse's refusals
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    _assert_one_line_exit_2(subprocess.CompletedProcess([], code, "", err))


@pytest.mark.parametrize("case", sorted(CUDA_CASES))
def test_cuda_asked_for_on_a_host_without_cuda_is_refused_at_start(
    case: str, tmp_path: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    argv, env = CUDA_CASES[case]
    result = run_vaewatch(argv, env, tmp_path)
    _assert_one_line_exit_2(result)
    assert "CUDA" in result.stderr


def test_the_table_covers_every_sub_command() -> None:
    from vaewatch.cli import build_parser

    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(sub.choices)
    covered = {argv[0] for argv, _ in CASES.values()}
    assert commands <= covered, f"no bad-argument case for {sorted(commands - covered)}"
    actions = {argv[1] for argv, _ in CASES.values() if argv[0] == "models"}
    assert {"list", "show", "promote", "rollback"} <= actions


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`vaewatch models list ... | head -0`: no BrokenPipeError traceback, the SIGPIPE status."""
    registry = tmp_path / "registry"
    for version in ("1", "2"):
        (registry / "m" / version).mkdir(parents=True)
    (registry / "m" / "production").write_text('{"version": "2", "history": ["1", "2"]}')
    argv = ["models", "list", "--model", "m", "--registry", str(registry)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaewatch", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == "", err
