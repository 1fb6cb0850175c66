"""Does the embedded broker (Tansu) honour `cleanup.policy=compact`? (docs/state.md)

Creates a compacted topic the way the worker does (`ensure_topics(..., compacted=[...])`),
asks `describe_configs` for its policy, writes `--records-per-key` records for each of a
few keys plus one tombstone, and reads the partition back at once and after `--wait` s.
`python -m benchmarks.tansu_compaction --wait 300`
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from kafkaio.client import ensure_topics, make_producer
from worker.broker import EmbeddedBroker, broker_binary
from worker.kafka_edge import StateChangelog
from worker.settings import WorkerSettings


def _policy(admin: Any, topic: str) -> str:
    """The topic's cleanup.policy as describe_configs reports it (all configs, not only the
    modified ones: Tansu reports none as modified; naming the config drops the connection)."""
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    except Exception as exc:  # a probe: report whatever the broker does
        return f"describe_configs failed: {type(exc).__name__}: {exc}"
    entry = found.get("topic", {}).get(topic, {}).get("cleanup.policy")
    return "(not reported)" if entry is None else f"{entry['value']} ({entry['config_source']})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--records-per-key", type=int, default=2000)
    p.add_argument("--value-bytes", type=int, default=1000)
    p.add_argument("--wait", type=float, default=300.0, help="seconds before the second read")
    args = p.parse_args(argv)
    print(f"broker: {broker_binary().name}")
    with EmbeddedBroker() as broker:
        settings = WorkerSettings(kafka_bootstrap_servers=broker.bootstrap, group_id="probe")
        topic = settings.state_topic
        ensure_topics(settings, [topic, "not-compacted"], 1, compacted=[topic])
        print(f"created {topic} with cleanup.policy=compact: no error")
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        for t in (topic, "not-compacted"):
            print(f"describe_configs {t}: cleanup.policy = {_policy(admin, t)}")
        admin.close()
        producer = make_producer(settings)
        value = b"x" * args.value_bytes
        for i in range(args.records_per_key):
            for k in range(args.keys):
                producer.send(topic, key=f"k{k}".encode(), value=value + b"%d" % i, partition=0)
        producer.send(topic, key=b"k0", value=None, partition=0)  # a tombstone
        producer.flush()
        producer.close()
        written = args.keys * args.records_per_key + 1
        print(f"wrote {written} records: {args.keys} keys x {args.records_per_key}, 1 tombstone")
        changelog = StateChangelog(settings, topic, timeout_s=120)
        for waited in (0.0, args.wait):
            time.sleep(waited)
            records = changelog.read(0)
            per_key = Counter(k.decode() for k, _ in records)
            print(f"read after {waited:.0f}s: {len(records)} records, per key {dict(per_key)}")
        changelog.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
