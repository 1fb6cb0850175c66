"""The `vaewatch` console script: one entry point, one sub-command per job.

Each area registers its own sub-commands (`register(subparsers)`), so this module only
dispatches and turns expected failures into a one-line message and a non-zero exit:
a user never sees a Python traceback for a mistake of theirs.

Lazily: importing every area's module costs ~3 s (torch, scipy, scikit-learn), which
`vaewatch --help` or `vaewatch worker --help` should not pay. `SUBCOMMANDS` names each
sub-command's area and one-line help; only the area of the command being run is imported,
the others appear as stubs that carry their help line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vwbase import __version__
from vwbase.errors import VaewatchError
from vwbase.logs import configure_logging

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (usage errors) instead of the full usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# sub-command -> (module whose `register(subparsers)` defines it, the line `--help` shows)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.cli", "train, calibrate, evaluate and publish a model version"),
    "score": (
        "training.cli",
        "score CSV series offline; writes OUT/<dataset>/<series>/scores.csv",
    ),
    "evaluate": (
        "training.cli",
        "score labelled test.csv files and print detection metrics (JSON)",
    ),
    "models": ("training.cli", "inspect the registry and move the production alias"),
    "worker": (
        "worker.cli",
        "the streaming worker: sensor windows in, anomaly events and corrected windows out",
    ),
    "replay": ("worker.cli", "produce sensor windows cut from CSV series into a topic"),
    "tail": (
        "worker.cli",
        "print a topic's messages, one line each (episodes, events, corrected windows)",
    ),
    "broker": ("worker.cli", "run the embedded Kafka-compatible broker (Tansu)"),
    "schemas": ("schemas.cli", "export the JSON Schemas of the wire formats"),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in `argv`: the first word that is one (top-level options take
    values such as DEBUG or json, never a command name)."""
    return next((word for word in argv if word in SUBCOMMANDS), None)


def _register(sub: argparse._SubParsersAction[Any], command: str | None) -> None:
    """The area of `command` registers its sub-commands for real; the rest are stubs."""
    area = SUBCOMMANDS[command][0] if command else None
    if area is not None:
        importlib.import_module(area).register(sub)
    for name, (module, text) in SUBCOMMANDS.items():
        if module != area:
            sub.add_parser(name, help=text, description=text)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with `command`'s area loaded (None: only the list of sub-commands)."""
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
    _register(sub, command)
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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
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
