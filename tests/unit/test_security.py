"""No pickle on any load path; secrets stay out of logs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["vaecore", "schemas", "training", "worker", "vaewatch"]


def test_no_pickle_or_unsafe_torch_load_in_the_product() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            if re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M):
                offenders.append(f"{path}: pickle-family import")
            for call in re.findall(r"torch\.load\([^)]*\)", text):
                if "weights_only=True" not in call:
                    offenders.append(f"{path}: {call}")
            if "np.load(" in text and "allow_pickle=True" in text:
                offenders.append(f"{path}: np.load with allow_pickle")
    assert offenders == []
