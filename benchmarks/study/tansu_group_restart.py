"""Does a consumer group on the embedded broker (Tansu) get partitions again after its
members leave together? Plain kafka-python consumers, no vaewatch code.

Round 1: N1 members (threads) join group g on a 4-partition topic, poll and commit for
12 s, close (LeaveGroup) at once. Round 2: N2 new members join the same group and poll for
RUN_S seconds. Prints when each member got its partitions ([] = none did).

    python benchmarks/study/tansu_group_restart.py N1 N2 RUN_S [LEAVE_STAGGER_S]

Results: benchmarks/results/tansu-group-restart.txt.
"""

import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from worker.broker import EmbeddedBroker


def member(bs, group, name, out, run_s, leave_after_s=0.0):
    c = KafkaConsumer(
        "t",
        bootstrap_servers=bs,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    t0, got = time.monotonic(), None
    while time.monotonic() - t0 < run_s:
        records = c.poll(timeout_ms=200)
        if c.assignment() and got is None:
            got = time.monotonic() - t0
            out.append((name, round(got, 1), sorted(p.partition for p in c.assignment())))
        if records:
            c.commit()
    time.sleep(leave_after_s)
    c.close()


def seed_topic(bootstrap: str) -> None:
    """Topic "t" of 4 partitions with 1,000 records (also tansu_group_restart_librdkafka.py)."""
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic("t", 4, 1)])
    p = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(1000):
        p.send("t", key=str(i).encode(), value=b"x")
    p.flush()


def main() -> None:
    n1, n2, run_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    stagger = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    with EmbeddedBroker() as b:
        seed_topic(b.bootstrap)
        for round_, n, seconds in ((1, n1, 12.0), (2, n2, run_s)):
            out: list = []
            threads = [
                threading.Thread(
                    target=member,
                    args=(b.bootstrap, "g", f"r{round_}m{i}", out, seconds),
                    kwargs={"leave_after_s": i * stagger if round_ == 1 else 0.0},
                )
                for i in range(n)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print("round", round_, out, flush=True)


if __name__ == "__main__":
    main()
