"""The speed bench's profile breakdown: py-spy raw stacks -> main-thread time shares per stage."""

from __future__ import annotations

import pytest

from benchmarks.profile import breakdown, stage_of

pytestmark = pytest.mark.unit

RUN = "main (vaewatch/__main__.py:5);WorkerLoop.run (worker/loop.py:210)"
RAW = "\n".join(
    [
        f"{RUN};WorkerLoop._score (worker/loop.py:120);process_batch (worker/pipeline.py:95);"
        "decode_window (schemas/messages.py:380) 30",
        f"{RUN};WorkerLoop._score (worker/loop.py:120);process_batch (worker/pipeline.py:105);"
        "Detector.score (vaecore/detector.py:200);Detector._forward (vaecore/detector.py:130) 50",
        f"{RUN};WorkerLoop.collect (worker/loop.py:94);KafkaConsumer.poll (kafka/consumer.py:1) 20",
        "Thread.run (threading.py:1);Sender.run (kafka/producer/sender.py:1) 40",
        "garbage line without a count",
    ]
)


def test_main_thread_samples_are_charged_to_the_innermost_stage() -> None:
    shares = breakdown(RAW)
    assert shares["decode + validate"] == pytest.approx(0.3)
    assert shares["score (network)"] == pytest.approx(0.5)
    assert shares["poll + fetch parsing"] == pytest.approx(0.2)
    assert len(shares) == 3, "the producer's sender thread is not the main thread"


def test_a_stack_outside_every_stage_is_other_and_empty_input_is_empty() -> None:
    assert stage_of(["main (x.py:1)", "sleep (y.py:2)"]) == "other"
    assert breakdown("") == {}
