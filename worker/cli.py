"""Sub-commands of this package (filled in by its issue)."""

import argparse
from typing import Any


def register(sub: "argparse._SubParsersAction[Any]") -> None:
    """Add this package's sub-commands to the `vaewatch` parser."""
