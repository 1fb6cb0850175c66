"""Producer send cost with and without coalesced sender wake-ups (one wake-up until the
sender thread's next loop), 4 alternated runs of 20,000 sends each on the embedded broker.
Usage (repo root): PYTHONPATH=. .venv/bin/python benchmarks/study/wakeup_coalesce_micro.py
(issue 14, 2026-11-27: ~23 wake-ups instead of thousands, CPU a record 20.3 -> 18.8 us,
wall 20.2 -> 21.7 us; the worker A/B is benchmarks/results/coalesce-wakeups-ab.txt.)"""
import time, threading, sys, statistics
from worker.broker import EmbeddedBroker
from kafka import KafkaProducer
from kafkaio.partitioner import CachingPartitioner

def coalesce(p):
    s = p._sender
    state = {"woken": False, "writes": 0}
    wake, run_once = s.wakeup, s.run_once
    def wakeup():
        if not state["woken"]:
            state["woken"] = True; state["writes"] += 1
            wake()
    def run_once_():
        state["woken"] = False
        run_once()
    s.wakeup = wakeup; s.run_once = run_once_
    return state

b = EmbeddedBroker().start()
try:
    time.sleep(1.0)
    res = {True: [], False: []}
    val = b"x" * 3000
    keys = [f"s{i%50}".encode() for i in range(50)]
    for rep in range(4):
        for co in (False, True):
            p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=5, batch_size=1_000_000,
                      partitioner=CachingPartitioner(), enable_idempotence=True, retries=2147483647)
            p.send("out", value=val, key=b"k").get(timeout=30)
            st = coalesce(p) if co else None
            N = 20000
            t = time.perf_counter(); c0 = time.process_time()
            fs = [p.send("out", value=val, key=keys[i % 50]) for i in range(N)]
            p.flush(); [f.get() for f in fs]
            dt = time.perf_counter() - t; cpu = time.process_time() - c0
            res[co].append((dt / N * 1e6, cpu / N * 1e6))
            print(f"coalesce={co} {dt/N*1e6:.1f} us/record wall, {cpu/N*1e6:.1f} us cpu (this process) writes={st and st['writes']}", flush=True)
            p.close()
    for co in (False, True):
        print(co, "median wall", statistics.median(r[0] for r in res[co]), "cpu", statistics.median(r[1] for r in res[co]))
finally:
    b.stop()
