"""The broker goes away and comes back (S3-backed Tansu on a local moto server, so data
survives the restart): the worker backs off, does not exit, resumes, and loses nothing."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.kafka_helpers import read_topic, start_worker
from tests.model_factory import SMD
from worker.broker import EmbeddedBroker, free_port
from worker.replay import load_replay_tables, replay_series
from worker.settings import settings_from_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    boto3 = pytest.importorskip("boto3")
    server = shutil.which("moto_server") or str(
        Path(__import__("sys").executable).parent / "moto_server"
    )
    if not Path(server).exists():
        pytest.skip("moto[server] not installed")
    port = free_port()
    proc = subprocess.Popen(
        [server, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                s3 = boto3.client(
                    "s3",
                    endpoint_url=endpoint,
                    aws_access_key_id="test",
                    aws_secret_access_key="test",
                    region_name="eu-west-2",
                )
                s3.create_bucket(
                    Bucket="tansu", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replay_split(bootstrap: str, topic: str, split: str) -> int:
    tables = load_replay_tables([SMD], split)
    return replay_series(
        settings_from_cli({"kafka_bootstrap_servers": bootstrap}),
        tables,
        topic,
        window=128,
        stride=64,
    )


def test_worker_rides_out_a_broker_restart_and_loses_nothing(
    s3_env: dict[str, str], registry: Path, tmp_path: Path, topics: Any
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port, storage="s3://tansu/", env=s3_env).start()
    worker = start_worker(
        broker.bootstrap, topics, registry, tmp_path / "worker.log", VAEWATCH_TOPIC_PARTITIONS="1"
    )
    try:
        worker.wait_for("partitions_assigned", timeout=40)
        first = replay_split(broker.bootstrap, topics.input, "test")
        read_topic(broker.bootstrap, topics.corrected, first, timeout_s=60)
        broker.stop()
        time.sleep(6)  # the broker is away: the worker must keep running and retrying
        assert worker.proc.poll() is None, "the worker exited while the broker was away"
        broker = EmbeddedBroker(port=port, storage="s3://tansu/", env=s3_env).start()
        second = replay_split(broker.bootstrap, topics.input, "train")
        corrected = read_topic(broker.bootstrap, topics.corrected, first + second, timeout_s=120)
        assert worker.proc.poll() is None
    finally:
        code = worker.stop()
        broker.stop()
    ids = {orjson.loads(r.value)["window_id"] for r in corrected}
    assert len(ids) == first + second, f"lost {first + second - len(ids)} windows"
    assert code == 0
