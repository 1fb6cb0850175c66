"""The stateless half of scoring in a child process, so the worker uses two cores (issue 14).

One worker process has two busy threads: the main thread (poll, decode, encode, send,
commit) and the scoring thread. They share one interpreter lock, and torch releases it only
inside the network: on two cores one process used 0.78-0.92 of a core. Here the network and
the numpy around it (`Detector.stateless`: `point_scores` + `correct`, which need no
per-series state) run in a child process with its own interpreter; the parent keeps everything
stateful: smoothing with each series' history, episodes, the changelog, encoding.

    main thread      submit(detector, windows)  -> request pipe  -> child reader thread
    scoring thread   result()  <- result pipe  <- child compute loop (in request order)

Requests and results are JSON headers plus raw arrays (`worker.scorer_wire`, no pickle),
stacked per window length; results travel compact (what the worker reads of them). The
child holds one model: a request follows the `Detector` it is to be scored with (fields,
scaler, thresholds, safetensors weights) whenever the parent's serving model changed, so
a hot-swapped version scores exactly the batches the parent gives it. The arithmetic is the
thread path's own code with the same torch thread count, so results are bit-identical
(tests/unit/test_scorer_process.py).

Failure: a child that errors or dies fails the batch waiting for it (`ScorerError`, one
`scorer_process_failed` log line): nothing of it is committed and the worker exits non-zero.
The child exits when its request pipe closes: at `close()`, and when the parent dies, even
by SIGKILL (the kernel closes the parent's end).
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np
import structlog

from vaecore import Detector
from vwbase.errors import VaewatchError
from worker.scorer_wire import (
    Header,
    Stateless,
    detector_from,
    detector_message,
    receive,
    results_from,
    results_message,
    send,
    windows_from,
    windows_message,
)

log = structlog.get_logger(__name__)

Message = tuple[Header, list[np.ndarray]]
PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size's default
POLL_S = 1.0  # how often a waiting scoring thread checks that the child is alive


def choose_scorer(setting: str, device: str, usable_cpus: int, cuda: bool) -> str:
    """`VAEWATCH_SCORER` resolved: auto = process on a CPU device with >= 2 usable CPUs (the
    A/B in docs/benchmarks.md, "Scoring process"), thread on a GPU (the GPU does the work;
    one process feeds it) or on one CPU (nothing to run beside)."""
    if setting != "auto":
        return setting
    on_cpu = device == "cpu" or (device == "auto" and not cuda)
    return "process" if on_cpu and usable_cpus >= 2 else "thread"


class ScorerError(VaewatchError):
    """The scoring process failed or died: the batch waiting for it fails."""

    exit_code = 1


def compute_stateless(detector: Detector, windows: list[np.ndarray]) -> Stateless:
    """Point scores and corrections: the network's work, which needs no per-series state.
    The thread path and the scoring process both run exactly this (on CUDA, every array
    stays on the device: `vaecore.resident`)."""
    return detector.stateless(windows)


# --- the child ---------------------------------------------------------------------------
def _read_requests(requests: Connection, inbox: queue.Queue[Message | None]) -> None:
    """Child thread: drain the request pipe at once, so the parent's send never waits for
    a batch in compute; None when the parent closed it (or died)."""
    try:
        while True:
            inbox.put(receive(requests))
    except (EOFError, OSError):
        inbox.put(None)


def _child_main(requests: Connection, results: Connection, torch_threads: int) -> None:
    """The child process: score requests in order with the model sent before them."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops, then closes us
    torch.set_num_threads(torch_threads)
    inbox: queue.Queue[Message | None] = queue.Queue()
    threading.Thread(target=_read_requests, args=(requests, inbox), daemon=True).start()
    model: Detector | str = "a batch arrived before any model"  # or why it could not load
    while (message := inbox.get()) is not None:
        header, arrays = message
        if header["kind"] == "model":
            model = _load_model(header, arrays)
            continue
        try:
            send(results, *_answer(model, header, arrays))
        except OSError:  # the parent is gone
            return


def _load_model(header: Header, arrays: list[np.ndarray]) -> Detector | str:
    try:
        return detector_from(header, arrays)
    except Exception as exc:  # reported with the next batch, which fails
        return f"the model could not be loaded here: {type(exc).__name__}: {exc}"


def _answer(model: Detector | str, header: Header, arrays: list[np.ndarray]) -> Message:
    """The batch's compact results, or an `error` header with one line naming the cause."""
    seq = header["seq"]
    try:
        if isinstance(model, str):
            raise RuntimeError(model)
        windows = windows_from(header, arrays)
        return results_message(seq, *compute_stateless(model, windows))
    except Exception as exc:  # sent to the parent, which fails the batch
        return {"kind": "error", "seq": seq, "reason": f"{type(exc).__name__}: {exc}"}, []


def _widen(conn: Connection) -> None:
    """A 1 MiB pipe (Linux: the default 64 KiB means a syscall, and a GIL hand-over, per
    64 KiB of a batch); left as it is where the system refuses."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


# --- the parent's handle -----------------------------------------------------------------
class ScorerProcess:
    """The parent's side: `submit` on the main thread, the returned thunk on the scoring
    thread (in submission order), `close` once at the end."""

    def __init__(self, torch_threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork: torch's threads, locks, sockets
        child_requests, self._requests = ctx.Pipe(duplex=False)
        self._results, child_results = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main,
            args=(child_requests, child_results, torch_threads),
            name="vaewatch-scorer",
            daemon=True,
        )
        _widen(self._requests)
        _widen(self._results)
        self._process.start()
        child_requests.close()  # only the child holds these now: its death is our EOF
        child_results.close()
        self._model: Detector | None = None  # the last model sent
        self._seq = 0
        self._expected = 0
        self._failure_lock = threading.Lock()
        self._failure_logged = False
        self.log = log.bind(scorer_pid=self._process.pid)
        self.log.info("scorer_process_started", torch_threads=torch_threads)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def submit(self, detector: Detector, windows: list[np.ndarray]) -> Callable[[], Stateless]:
        """Send a batch (and the model, when it changed); the thunk waits for its results."""
        seq, self._seq = self._seq, self._seq + 1
        try:
            if detector is not self._model:
                send(self._requests, *detector_message(detector))
                self._model = detector
                self.log.info("scorer_model_sent", model=detector.name, version=detector.version)
            send(self._requests, *windows_message(seq, windows))
        except OSError as exc:
            raise self._failed(f"{self._exited()}; a batch could not be sent ({exc})") from None
        return lambda: self._result(seq, windows)

    def _result(self, seq: int, windows: list[np.ndarray]) -> Stateless:
        """On the scoring thread: this batch's results, which must be the next to come."""
        if seq != self._expected:
            raise self._failed(f"results awaited out of order ({seq}, next is {self._expected})")
        self._expected += 1
        try:
            while not self._results.poll(POLL_S):
                if not self._process.is_alive():
                    raise EOFError
            header, arrays = receive(self._results)
        except (EOFError, OSError):
            raise self._failed(self._exited()) from None
        if header["kind"] == "error":
            raise self._failed(f"the scoring process failed on a batch: {header['reason']}")
        if header["seq"] != seq:
            raise self._failed(f"the scoring process answered batch {header['seq']}, not {seq}")
        return results_from(header, arrays, windows)

    def _exited(self) -> str:
        self._process.join(1.0)
        code = self._process.exitcode
        signal_name = f", {signal.Signals(-code).name}" if code is not None and code < 0 else ""
        return f"the scoring process exited (exit code {code}{signal_name})"

    def _failed(self, reason: str) -> ScorerError:
        """The error to raise; logged once: the main thread's send and the scoring thread's
        wait for an earlier batch can both find the same dead child."""
        with self._failure_lock:
            first, self._failure_logged = not self._failure_logged, True
        if first:
            self.log.error("scorer_process_failed", reason=reason)
        return ScorerError(reason)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the request pipe (the child exits after its batch in hand), then wait."""
        self._requests.close()
        self._process.join(timeout_s)
        if self._process.is_alive():
            self.log.warning("scorer_process_killed", waited_s=timeout_s)
            self._process.kill()
            self._process.join(5.0)
        self._results.close()
        self.log.info("scorer_process_stopped", exit_code=self._process.exitcode)
