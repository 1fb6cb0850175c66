"""The state-restore bench's core (no broker): its records are the loop's and restore whole."""

from __future__ import annotations

import orjson
import pytest

from benchmarks.state_restore import Shape, install, make_records, size_mb

pytestmark = pytest.mark.unit

SHAPE = Shape(k=16, window=8, channels=4, open_share=0.3)


@pytest.mark.parametrize("per_series", [1, 5])
def test_every_series_restores_with_its_tail_and_open_episode(per_series: int) -> None:
    records = make_records(50, per_series, SHAPE, seed=1)
    assert len(records) == 50 * per_series
    assert size_mb(records) > 0
    docs = [orjson.loads(r.value or b"") for r in records]
    assert {d["format"] for d in docs} == {1}
    assert all(d["before"] is not None and d["now"] is not None for d in docs)
    opened = {d["series_id"] for d in docs if d["now"]["episodes"]["episode"] is not None}
    assert opened, "no series has an open episode"

    states, installed = install([(r.key or b"", r.value) for r in records], position=10**12)
    assert installed == len(states) == 50
    assert states.open_episodes() == len(opened)
    exported = states.history.export(docs[-1]["series_id"])
    assert exported is not None and len(exported[1]) == SHAPE.k - 1 + SHAPE.window


def test_a_batch_at_or_past_the_position_restores_its_before() -> None:
    records = make_records(5, 2, SHAPE, seed=2)
    last = orjson.loads(records[-1].value or b"")
    states, _ = install([(r.key or b"", r.value) for r in records], position=last["from"])
    assert states.snapshot(last["series_id"]) == last["before"]
