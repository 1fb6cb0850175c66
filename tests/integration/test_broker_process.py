"""`vaewatch broker` never leaves Tansu behind, even when it is SIGKILLed (no atexit then)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from worker.broker import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux"),
]


def alive(pid: int) -> bool:
    """Running and not a zombie (an orphan may wait a moment for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start_broker_command() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaewatch", "broker", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "... listening on 127.0.0.1:N (pid P)"
    match = re.search(r"\(pid (\d+)\)", line)
    assert match, f"unexpected first line: {line!r}"
    return proc, int(match.group(1))


def test_sigkill_of_vaewatch_broker_takes_the_tansu_child_with_it() -> None:
    proc, tansu = start_broker_command()
    try:
        assert alive(tansu)
        assert os.getpgid(tansu) == tansu, "Tansu runs in a process group of its own"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive(tansu) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(tansu), "Tansu outlived a SIGKILLed `vaewatch broker`"
    finally:
        if alive(tansu):
            os.kill(tansu, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_sigterm_of_vaewatch_broker_stops_tansu_in_order() -> None:
    proc, tansu = start_broker_command()
    try:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "broker stopped" in out
        assert not alive(tansu)
    finally:
        if alive(tansu):
            os.kill(tansu, signal.SIGKILL)
