"""The stateless half of scoring in a child process, so the worker uses two cores (issue 14).

One worker process has two busy threads: the main thread (poll, decode, encode, send,
commit) and the scoring thread. They share one interpreter lock, and torch releases it only
inside the network: on two cores one process used 0.78-0.92 of a core. Here the network and
the numpy around it (`Detector.point_scores` + `Detector.correct`, which need no per-series
state) run in a child process with its own interpreter; the parent keeps everything
stateful: smoothing with each series' history, episodes, the changelog, encoding.

    main thread      submit(detector, windows)  -> request pipe  -> child reader thread
    scoring thread   result()  <- result pipe  <- child compute loop (in request order)

Requests and results are pickled numpy stacks, one per window length (one copy each way).
The child holds one model: a request follows the pickled `Detector` it is to be scored
with whenever the parent's serving model changed, so a hot-swapped version scores exactly
the batches the parent gives it. The arithmetic is the thread path's own code with the same
torch thread count, so results are bit-identical (tests/unit/test_scorer_process.py).

Failure: a child that errors or dies fails the batch waiting for it (`ScorerError`, one
`scorer_process_failed` log line): nothing of it is committed and the worker exits non-zero.
The child exits when its request pipe closes: at `close()`, and when the parent dies, even
by SIGKILL (the kernel closes the parent's end).
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import pickle
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import structlog

from vaecore import Correction, Detector, PointScores
from vwbase.errors import VaewatchError

log = structlog.get_logger(__name__)

Stateless = tuple[list[PointScores], list[Correction]]  # a batch's history-free results
Groups = list[tuple[list[int], list[np.ndarray]]]  # per window length: indices, stacked fields
PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size's default
POLL_S = 1.0  # how often a waiting scoring thread checks that the child is alive


def choose_scorer(setting: str, device: str, usable_cpus: int, cuda: bool) -> str:
    """`VAEWATCH_SCORER` resolved: auto = process on a CPU device with >= 2 usable CPUs (the
    A/B in README, "Benchmarks"), thread on a GPU (the GPU does the work; one process
    feeds it) or on one CPU (nothing to run beside)."""
    if setting != "auto":
        return setting
    on_cpu = device == "cpu" or (device == "auto" and not cuda)
    return "process" if on_cpu and usable_cpus >= 2 else "thread"


class ScorerError(VaewatchError):
    """The scoring process failed or died: the batch waiting for it fails."""

    exit_code = 1


def compute_stateless(detector: Detector, windows: list[np.ndarray]) -> Stateless:
    """Point scores and corrections: the network's work, which needs no per-series state.
    The thread path and the scoring process both run exactly this."""
    points = detector.point_scores(windows)
    return points, detector.correct(windows, points)


# --- the wire format: arrays stacked per window length -------------------------------------
def pack(rows: list[list[np.ndarray]]) -> Groups:
    """Per window: its fields (arrays). Stacked per leading length, one array per field."""
    groups: dict[int, list[int]] = {}
    for i, fields in enumerate(rows):
        groups.setdefault(len(fields[0]), []).append(i)
    return [
        (index, [np.stack([rows[i][f] for i in index]) for f in range(len(rows[index[0]]))])
        for index in groups.values()
    ]


def unpack(groups: Groups, n: int) -> list[list[np.ndarray]]:
    """`pack`'s inverse: per window its fields (views into the stacks)."""
    rows: list[list[np.ndarray]] = [[] for _ in range(n)]
    for index, stacks in groups:
        for j, i in enumerate(index):
            rows[i] = [s[j] for s in stacks]
    return rows


# Results travel compact: what the worker reads of them. Dense per window: raw step scores,
# channel scores, flagged and replaced masks; the rest only where it is used: point scores
# and reconstruction at flagged points (the event's points), corrected values at replaced
# points (the parent has the input, and `correct` changes nothing else). 128 x 38: ~11 KB
# a window instead of ~150 KB, which the parent's GIL-bound pipe reads could not keep up with.
Results = list[tuple[list[int], list[np.ndarray], list[np.ndarray]]]


def _pack_results(points: list[PointScores], corrections: list[Correction]) -> Results:
    rows = [[p.raw_step, p.channel, p.flagged] for p in points]
    for row, c in zip(rows, corrections, strict=True):
        row.append(c.replaced)
    dense = pack(rows)
    out: Results = []
    for index, stacks in dense:
        flat = [
            np.concatenate([points[i].point[points[i].flagged] for i in index]),
            np.concatenate([points[i].expected[points[i].flagged] for i in index]),
            np.concatenate([corrections[i].values[corrections[i].replaced] for i in index]),
        ]
        out.append((index, stacks, flat))
    return out


def _unpack_results(results: Results, windows: list[np.ndarray]) -> Stateless:
    """Full `PointScores` and `Correction`s again; `point` and `expected` hold values only
    at flagged points (NaN elsewhere) and `expected_std` none: the worker reads no more."""
    points: list[PointScores] = [None] * len(windows)  # type: ignore[list-item]
    corrections: list[Correction] = [None] * len(windows)  # type: ignore[list-item]
    for index, (raw_step, channel, flagged, replaced), flat in results:
        flagged_at = np.cumsum([int(flagged[j].sum()) for j in range(len(index))])[:-1]
        replaced_at = np.cumsum([int(replaced[j].sum()) for j in range(len(index))])[:-1]
        point_vals, expected_vals = np.split(flat[0], flagged_at), np.split(flat[1], flagged_at)
        corrected_vals = np.split(flat[2], replaced_at)
        nan_point = _nan(flagged.shape[1:], flat[0].dtype)
        nan_expected = _nan(flagged.shape[1:], flat[1].dtype)
        for j, i in enumerate(index):
            point = _at(flagged[j], point_vals[j], nan_point)
            expected = _at(flagged[j], expected_vals[j], nan_expected)
            points[i] = PointScores(
                point, raw_step[j], channel[j], expected, nan_expected, flagged[j]
            )
            values = windows[i].copy()
            values[replaced[j]] = corrected_vals[j]
            corrections[i] = Correction(values, replaced[j])
    return points, corrections


def _nan(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """A read-only all-NaN array: shared by the windows of a group where nothing is known."""
    out = np.full(shape, np.nan, dtype=dtype)
    out.flags.writeable = False
    return out


def _at(mask: np.ndarray, values: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """`values` at `mask`, NaN elsewhere (`nan` itself when there are none)."""
    if not len(values):
        return nan
    out = np.full(mask.shape, np.nan, dtype=values.dtype)
    out[mask] = values
    return out


def _send(conn: Connection, message: tuple[str, int, Any]) -> None:
    # plain pickle, not multiprocessing's: torch registers tensor reductions there that
    # move tensors through shared memory; here everything travels by value
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(conn: Connection) -> tuple[str, int, Any]:
    message: tuple[str, int, Any] = pickle.loads(conn.recv_bytes())
    return message


# --- the child ---------------------------------------------------------------------------
def _read_requests(requests: Connection, inbox: queue.Queue[tuple[str, int, Any] | None]) -> None:
    """Child thread: drain the request pipe at once, so the parent's send never waits for
    a batch in compute; None when the parent closed it (or died)."""
    try:
        while True:
            inbox.put(_recv(requests))
    except (EOFError, OSError):
        inbox.put(None)


def _child_main(requests: Connection, results: Connection, torch_threads: int) -> None:
    """The child process: score requests in order with the model sent before them."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops, then closes us
    torch.set_num_threads(torch_threads)
    inbox: queue.Queue[tuple[str, int, Any] | None] = queue.Queue()
    threading.Thread(target=_read_requests, args=(requests, inbox), daemon=True).start()
    detector: Detector | None = None
    while (message := inbox.get()) is not None:
        kind, seq, body = message
        if kind == "model":
            detector = pickle.loads(body)
            continue
        try:
            if detector is None:
                raise RuntimeError("a batch arrived before any model")
            windows = [w[0] for w in unpack(body, sum(len(i) for i, _ in body))]
            reply: tuple[str, int, Any] = (
                "ok",
                seq,
                _pack_results(*compute_stateless(detector, windows)),
            )
        except Exception as exc:  # sent to the parent, which fails the batch
            reply = ("error", seq, f"{type(exc).__name__}: {exc}")
        try:
            _send(results, reply)
        except OSError:  # the parent is gone
            return


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
                _send(self._requests, ("model", seq, pickle.dumps(detector)))
                self._model = detector
                self.log.info("scorer_model_sent", model=detector.name, version=detector.version)
            _send(self._requests, ("score", seq, pack([[w] for w in windows])))
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
            kind, got, body = _recv(self._results)
        except (EOFError, OSError):
            raise self._failed(self._exited()) from None
        if kind == "error":
            raise self._failed(f"the scoring process failed on a batch: {body}")
        if got != seq:
            raise self._failed(f"the scoring process answered batch {got}, expected {seq}")
        return _unpack_results(body, windows)

    def _exited(self) -> str:
        self._process.join(1.0)
        code = self._process.exitcode
        signal_name = f", {signal.Signals(-code).name}" if code is not None and code < 0 else ""
        return f"the scoring process exited (exit code {code}{signal_name})"

    def _failed(self, reason: str) -> ScorerError:
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
