"""The speed bench's profile breakdown: py-spy raw stacks -> main-thread time shares per stage."""

from __future__ import annotations

import pytest

from benchmarks.profile import breakdown, stage_of

pytestmark = pytest.mark.unit

RUN = "main (vaewatch/__main__.py:5);WorkerLoop.run (worker/loop.py:210)"
SCORER = "Thread.run (threading.py:1);_worker (concurrent/futures/thread.py:1)"
RAW = "\n".join(
    [
        f"{SCORER};score_batch (worker/pipeline.py:120);Detector.correct (vaecore/detector.py:1);"
        "Detector._per_point (vaecore/detector.py:1) 30",
        f"{SCORER};score_batch (worker/pipeline.py:120);"
        "Detector.score (vaecore/detector.py:200);Detector._forward (vaecore/detector.py:130) 70",
        f"{RUN};WorkerLoop.collect (worker/loop.py:94);KafkaConsumer.poll (kafka/consumer.py:1) 10",
        f"{RUN};WorkerLoop._submit (worker/loop.py:1);decode_batch (worker/pipeline.py:1);"
        "decode_window (schemas/messages.py:380) 10",
        f"{RUN};Future.result (concurrent/futures/_base.py:1);wait (threading.py:1) 60",
        "Thread.run (threading.py:1);Sender.run (kafka/producer/sender.py:1) 40",
        "garbage line without a count",
    ]
)


def test_samples_are_charged_per_thread_to_the_innermost_stage() -> None:
    shares = breakdown(RAW)
    assert shares["scoring"] == pytest.approx(
        {"correct (network + merge)": 0.3, "score (network)": 0.7}
    )
    assert shares["main"] == pytest.approx(
        {
            "poll + fetch parsing": 0.125,
            "decode + validate": 0.125,
            "wait for the scoring thread": 0.75,
        }
    )
    assert set(shares) == {"main", "scoring"}, "the producer's sender thread is neither"


def test_a_stack_outside_every_stage_is_other_and_empty_input_is_empty() -> None:
    assert stage_of(["main (x.py:1)", "sleep (y.py:2)"]) == "other"
    assert breakdown("") == {}


def test_the_scoring_thread_of_process_mode_is_charged_to_its_own_stages() -> None:
    """With `VAEWATCH_SCORER=process` the scoring thread waits for the child, then smooths,
    moves episodes and writes the changelog: each its own stage, not "batch bookkeeping"."""
    batch = f"{SCORER};score_batch (worker/pipeline.py:150)"
    raw = "\n".join(
        [
            f"{batch};ScorerProcess._result (worker/scorer_process.py:190);"
            "Connection.recv_bytes (multiprocessing/connection.py:1) 50",
            f"{batch};Detector.window_scores (vaecore/detector.py:300) 20",
            f"{batch};_advance_episodes (worker/pipeline.py:180);apply (worker/episodes.py:1) 20",
            f"{batch};SeriesStates.take_records (worker/state.py:1) 10",
        ]
    )
    assert breakdown(raw)["scoring"] == pytest.approx(
        {
            "wait for the scoring process": 0.5,
            "smooth (window scores)": 0.2,
            "episodes": 0.2,
            "state changelog": 0.1,
        }
    )
