"""Throw-away: py-spy on the scoring process during back-to-back round trips (128 x CH)."""
import subprocess, sys, time
import numpy as np
import torch
from benchmarks.profile import py_spy
from benchmarks.speed import build_detector, synthetic
from worker.scorer_process import ScorerProcess, compute_stateless

if __name__ == "__main__":
    ch = int(sys.argv[1])
    torch.set_num_threads(1)
    det = build_detector(128, ch)
    windows = [w.astype(np.float64) for w in synthetic(256, 128, ch, seed=4)]
    sc = ScorerProcess(1)
    sc.submit(det, windows)()
    spy = subprocess.Popen([py_spy(), "record", "--pid", str(sc.pid), "--duration", "5", "--rate", "250",
                            "--format", "raw", "--threads", "--idle", "--output", f"/tmp/child-{ch}.txt"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < 3:
        sc.submit(det, windows)(); n += 1
    rt = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(3): compute_stateless(det, windows)
    loc = (time.perf_counter() - t0) / 3
    print(f"round trip {rt*1e3:.1f} ms/batch, local {loc*1e3:.1f} ms/batch")
    spy.wait(); sc.close()
