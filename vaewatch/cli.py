"""The `vaewatch` console script: one entry point, one sub-command per job.

Each area registers its own sub-commands (`register(subparsers)`), so this module only
dispatches and turns expected failures into a one-line message and a non-zero exit:
a user never sees a Python traceback for a mistake of theirs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from vaewatch import __version__
from vaewatch.errors import VaewatchError
from vaewatch.logs import configure_logging

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (usage errors) instead of the full usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from schemas.cli import register as register_schemas
    from training.cli import register as register_training
    from worker.cli import register as register_worker

    parser = _Parser(
        prog="vaewatch",
        description=(
            "Streaming anomaly detection for sensor time series: a 1D-convolutional VAE "
            "scores windows from Kafka, publishes anomaly events and corrected windows."
        ),
        epilog="Run `vaewatch <command> --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"vaewatch {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("VAEWATCH_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env VAEWATCH_LOG_LEVEL; default INFO)",
    )
    parser.add_argument(
        "--log-format",
        default="auto",
        choices=["auto", "json", "console"],
        help="auto = console on a terminal, JSON lines otherwise",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    register_training(sub)
    register_worker(sub)
    register_schemas(sub)
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `cat big | head`


def _stdout_closed() -> int:
    """The reader of stdout went away (`vaewatch models show ... | head`): stop quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush cannot fail again
    os.close(devnull)
    return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level.upper() not in LOG_LEVELS:
        parser.error(
            f"log level {args.log_level!r} (--log-level or VAEWATCH_LOG_LEVEL) "
            f"must be one of {', '.join(LOG_LEVELS)}"
        )
    configure_logging(args.log_level, args.log_format)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code = handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except VaewatchError as exc:
        print(f"vaewatch {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"vaewatch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
