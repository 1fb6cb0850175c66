"""The consumer-group restart of `tansu_group_restart.py` with librdkafka's client instead of
kafka-python: if its groups get partitions again where kafka-python's stall, the stall is
the client's; if they stall too, the broker's.

Round 1: N1 members join group g on a 4-partition topic, poll and commit for 12 s, close
together. Round 2: N2 new members of the same group poll for RUN_S s. Each round runs in
a confluent-kafka interpreter (`CK_PYTHON`: a scratch venv with `pip install
confluent-kafka`; not a project dependency), the broker in this one.

    CK_PYTHON=/tmp/ck-venv/bin/python python -m benchmarks.study.tansu_group_restart_librdkafka N1 N2 RUN_S RUNS

Results: benchmarks/results/tansu-group-restart.txt.
"""

import os
import subprocess
import sys

from benchmarks.study.tansu_group_restart import seed_topic
from worker.broker import EmbeddedBroker

ROUND = r"""
import sys, threading, time
from confluent_kafka import Consumer

bs, group, n, run_s, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
out = []

def member(name):
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 1000})
    c.subscribe(["t"])
    t0, got = time.monotonic(), None
    while time.monotonic() - t0 < run_s:
        msg = c.poll(0.2)
        if c.assignment() and got is None:
            got = time.monotonic() - t0
            out.append((name, round(got, 1), sorted(p.partition for p in c.assignment())))
        if msg is not None and not msg.error():
            c.commit(asynchronous=False)
    c.close()

threads = [threading.Thread(target=member, args=(f"{tag}m{i}",)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(tag, out, flush=True)
"""


def main() -> None:
    n1, n2, run_s, runs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    ck = os.environ["CK_PYTHON"]
    stuck = 0
    with EmbeddedBroker() as b:
        seed_topic(b.bootstrap)
        for run in range(runs):
            group = f"g{run}"
            for round_, n, seconds in ((1, n1, 12.0), (2, n2, run_s)):
                tag = f"run{run}-r{round_}"
                done = subprocess.run(
                    [ck, "-c", ROUND, b.bootstrap, group, str(n), str(seconds), tag],
                    capture_output=True, text=True, check=True,
                )
                line = done.stdout.strip().splitlines()[-1]
                print(line, flush=True)
            if line.endswith("[]"):
                stuck += 1
        print(f"{n1} -> {n2}: {stuck} of {runs} runs stuck (no round-2 partition in {run_s} s)")


if __name__ == "__main__":
    main()
