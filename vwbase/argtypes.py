"""Argument types for the command line: every value is checked while the line is parsed.

Each function is an argparse `type=`: it returns the converted value or raises
`argparse.ArgumentTypeError`, which the parser turns into one line on stderr and exit 2,
before any data is read, any broker contacted or any model trained. Only the standard
library here, so parsing stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's rule for topic names
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
MAX_SEED = 2**32 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def seed(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and {MAX_SEED}")
    return value


def port(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} must be between 1 and 65535")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be >= 0")
    return value


def open_fraction(text: str) -> float:
    """A share strictly between 0 and 1 (a held-out fraction, a false-alarm rate)."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} must be between 0 and 1 (exclusive)")
    return value


def duration_seconds(text: str) -> float:
    """'30m', '12h', '7d', '2w' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a positive number and a unit (s, m, h, d, w), e.g. 30m, 12h, 7d"
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def topic(text: str) -> str:
    if not _TOPIC.match(text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r} is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-')"
        )
    return text


def channel_name(text: str) -> str:
    """A channel as the wire format allows it (contract §3.1): 1 to 256 characters."""
    if not 0 < len(text) <= 256:
        raise argparse.ArgumentTypeError("a channel name has 1 to 256 characters")
    return text


def model_name(text: str) -> str:
    """A registry model name: one path component, no '@' (that separates a version)."""
    if not text or "/" in text or "\\" in text or "@" in text or text.startswith("."):
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r} is not a model name (no '/', '@' or leading '.')"
        )
    return text


def model_spec(text: str) -> str:
    """NAME (its production version) or NAME@VERSION (a version number)."""
    name, at, version = text.partition("@")
    model_name(name)
    if at and not (version.isdigit() and int(version) > 0):
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: use NAME or NAME@VERSION (VERSION >= 1)")
    return text


def version(text: str) -> str:
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a version number (1, 2, ...)")
    return text


def device(text: str) -> str:
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: use auto, cpu, cuda or cuda:N")
    return text


def _first_existing(text: str) -> tuple[Path, Path]:
    """The path and its nearest existing ancestor (itself when it exists), which must be a
    directory: a file on the way means the directory can never be created."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path is not a directory")
    path = Path(text)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is" if part == path else f"is under {part}, which is"
                raise argparse.ArgumentTypeError(f"{text} {where} a file, not a directory")
            return path, part
    return path, Path.cwd()  # pragma: no cover - a relative path's last parent is "."


def output_directory(text: str) -> Path:
    """A directory to write into: it exists, or can be created where nothing is a file."""
    path, existing = _first_existing(text)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable")
    return path


def existing_directory(text: str) -> Path:
    path, existing = _first_existing(text)
    if existing != path:
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return path
