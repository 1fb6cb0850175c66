"""`make run-readme`: the README's make-run block is replaced by a run's summary, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaewatch.demo import README_BEGIN, README_END, update_readme
from vwbase.errors import VaewatchError

pytestmark = pytest.mark.unit


def test_the_block_between_the_markers_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{README_BEGIN}\nold numbers\n{README_END}\n\nafter\n")
    update_readme("=== summary ===", 42.0, readme)
    text = readme.read_text()
    assert text.startswith("# title\n\n")
    assert text.endswith("\n\nafter\n")
    assert "old numbers" not in text
    assert "=== summary ===" in text
    assert "42 s for the whole run" in text
    assert "load average" in text


def test_a_readme_without_markers_is_an_error_not_a_silent_no_op(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(VaewatchError, match="make-run:begin"):
        update_readme("x", 1.0, readme)


def test_the_project_readme_has_the_block() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert text.count(README_BEGIN) == 1
    assert text.count(README_END) == 1
