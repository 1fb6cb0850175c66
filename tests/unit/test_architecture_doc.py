"""docs/architecture.md cannot drift from the code: its layer list is the import-linter
contract in pyproject.toml, and every dotted name it cites in backticks exists."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text()
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def doc_layers() -> list[str]:
    """The first column of the ```text layers block, top first."""
    block = re.search(r"```text layers\n(.*?)```", DOC, re.S)
    assert block, "docs/architecture.md lost its ```text layers block"
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.group(1).splitlines()]


def test_the_doc_lists_the_layers_the_linter_enforces() -> None:
    [layers] = [c for c in CONFIG["contracts"] if c["type"] == "layers"]
    assert doc_layers() == layers["layers"]


def test_every_layered_package_is_a_root_package_of_the_linter() -> None:
    named = {p.strip() for layer in doc_layers() for p in layer.split("|")}
    assert named <= set(CONFIG["root_packages"])


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_dotted_name_the_doc_cites_exists() -> None:
    roots = "|".join(CONFIG["root_packages"])
    cited = set(re.findall(rf"`((?:{roots})(?:\.\w+)+)`", DOC))
    assert cited, "no dotted names found: the pattern no longer matches the doc"
    missing = sorted(name for name in cited if not _resolves(name))
    assert not missing, f"docs/architecture.md cites names that do not exist: {missing}"
