"""`vaewatch --help` stays fast: the top level imports no area, and the stub list is complete."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from vaewatch.cli import SUBCOMMANDS, _Parser

pytestmark = pytest.mark.unit

PROBE = """
import sys
from vaewatch.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "scipy", "sklearn", "matplotlib") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def imported_heavy(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=list(argv))],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY=")]
    return [m for m in line.removeprefix("HEAVY=").split(",") if m]


@pytest.mark.parametrize("argv", [("--help",), (), ("worker", "--help"), ("--version",)])
def test_help_imports_neither_torch_nor_the_science_stack(argv: tuple[str, ...]) -> None:
    assert imported_heavy(*argv) == []


def test_a_command_of_the_training_area_does_load_it() -> None:
    """The probe can fail: `train --help` needs training.cli, which imports torch."""
    assert "torch" in imported_heavy("train", "--help")


def registered(module: str) -> dict[str, str | None]:
    """The sub-commands `module.register` defines, with their help lines."""
    parser = _Parser(prog="vaewatch")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    importlib.import_module(module).register(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_table_lists_every_sub_command_of_every_area_with_its_own_help() -> None:
    """A command an area adds but the table misses would be unreachable: fail here instead."""
    areas = {module for module, _ in SUBCOMMANDS.values()}
    real = {name: text for area in sorted(areas) for name, text in registered(area).items()}
    assert set(real) == set(SUBCOMMANDS)
    for name, (module, text) in SUBCOMMANDS.items():
        assert name in registered(module), f"{name} is not registered by {module}"
        if real[name] is not None:
            assert real[name] == text, f"`vaewatch --help` shows another line for {name}"


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_sub_command_still_parses_its_own_help(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from vaewatch.cli import build_parser

    parser = build_parser(name)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: vaewatch {name}" in capsys.readouterr().out
    assert isinstance(parser, argparse.ArgumentParser)
