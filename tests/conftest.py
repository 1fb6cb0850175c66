"""Shared fixtures. Unit tests need nothing; integration tests get a real broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vaecore import Detector

# Tests run on a 2-core machine next to a broker: keep torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The tsb-ad interpreter `make bench-quality` builds, for the VUS-PR tests (skipped without).
_PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / ".peers-venv" / "bin" / "python"
if _PEERS.exists():
    os.environ.setdefault("VAEWATCH_PEERS_PYTHON", str(_PEERS))


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """A test that runs `vaewatch.cli.main` configures structlog (level, renderer) for the
    process; later tests' `capture_logs` must not inherit its level filter."""
    yield
    import structlog

    structlog.reset_defaults()


@pytest.fixture(scope="session")
def tiny_detector() -> Detector:
    """One small model trained on the bundled SMD sample, shared by the whole session."""
    from tests.model_factory import train_tiny_detector

    return train_tiny_detector()
