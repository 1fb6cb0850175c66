"""structlog set-up: JSON lines in production, a readable console on a terminal.

Logs go to stderr so that commands printing results (JSON reports, tables) keep stdout clean.
"""

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "json", "console"]
_PROCESS_CONTEXT: dict[str, object] = {}


class _StderrLogger(structlog.PrintLogger):
    """Writes to whatever `sys.stderr` is at the time of the call (not at configuration).

    One `write` per line, newline included: a non-interactive stderr is write-through, so
    `print` would issue the line and its newline as two system calls, and the worker's
    processes, which share one stderr, would merge lines between them. A single write is
    atomic on an O_APPEND file and, up to PIPE_BUF bytes, on a pipe."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    return _StderrLogger()


def bind_process_context(**fields: object) -> None:
    """Fields every log line of this process carries, from whichever thread logs it (the
    worker's group and input topic; its process index under `worker.supervisor`). Bound
    contextvars stay with the thread that bound them: kafka-python's callbacks and the
    worker's other threads would log without them."""
    _PROCESS_CONTEXT.update(fields)


def _merge_process_context(
    logger: object, method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key, value in _PROCESS_CONTEXT.items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    """Configure structlog once per process; safe to call again (last call wins)."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _merge_process_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
