"""The README's configuration table is the operator's reference: every worker setting is in
it, under its environment name, with the default the code actually has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from worker.settings import WorkerSettings

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| (`[A-Z_]+`(?: / `[A-Z_]+`)*) \| ([^|]+) \|", re.MULTILINE)
# Defaults the table spells in the operator's words rather than as the code's value.
SPELLED = {
    "STATE_TOPIC": "GROUP_ID-state (vaewatch-worker-state)",
    "STATE_TTL": "7d (seconds, or 30m/12h/7d/2w; 0 = never)",
    "REGISTRY": "./models",
}
NOT_SETTINGS = {"LOG_LEVEL"}  # a flag of every command, not a worker setting


def documented_defaults() -> dict[str, str]:
    """Each variable of the table with its default as written (backticks dropped)."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for names, defaults in ROW.findall(section):
        names_list = [n.strip("` ") for n in names.split(" / ")]
        values = [v.strip().replace("`", "") for v in defaults.split(" / ")]
        if len(values) != len(names_list):  # one value for the whole row ("–")
            values = [defaults.strip().replace("`", "")] * len(names_list)
        out.update(zip(names_list, values, strict=True))
    return out


def spelled(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_setting_is_in_the_table_and_nothing_else() -> None:
    documented = set(documented_defaults()) - NOT_SETTINGS
    settings = {name.upper() for name in WorkerSettings.model_fields}
    assert documented == settings


def test_each_default_in_the_table_is_the_codes() -> None:
    documented = documented_defaults()
    for name, field in WorkerSettings.model_fields.items():
        env = name.upper()
        expected = SPELLED.get(env, spelled(field.default))
        assert documented[env] == expected, env
