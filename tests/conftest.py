"""Shared fixtures. Unit tests need nothing; integration tests get a real broker."""

import os

import pytest

# Tests run on a 2-core machine next to a broker: keep torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    import torch

    torch.set_num_threads(1)
