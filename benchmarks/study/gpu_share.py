"""How one GPU shared by N worker processes stretches each one's batch (issue 14).

`python -m benchmarks.study.gpu_share [N,...] [BATCH,...] [SECONDS] [SHAPE]`: for every
(N, batch), N processes each score + correct batches of `batch` windows back to back for
SECONDS with `Detector.stateless` (the worker's call; the device path on CUDA), all started
together by a barrier. Prints, per row, each batch's wall time (median and p90 over all
processes) and the windows/s of all of them together. If N processes only split the GPU,
a batch takes ~N times as long at the same total rate; more than that is sharing overhead
(context switches between CUDA contexts without MPS), which a paced worker pays as latency.
Also prints the CPU time a batch costs (the process's own), to tell host stalls apart.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from typing import Any

import numpy as np


def _one(
    shape: tuple[int, int], batch: int, seconds: float, barrier: Any, out: Any, threads: int
) -> None:
    import torch

    from benchmarks.speed import build_detector, synthetic

    torch.set_num_threads(threads)
    detector = build_detector(shape[0], shape[1], device="auto")
    windows = list(synthetic(batch, shape[0], shape[1], seed=os.getpid() % 1000))
    for _ in range(3):
        detector.stateless(windows)
    barrier.wait()
    walls, cpus = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0, c0 = time.perf_counter(), time.process_time()
        detector.stateless(windows)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    out.put((walls, cpus))


def run(n: int, batch: int, seconds: float, shape: tuple[int, int], threads: int) -> str:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_one, args=(shape, batch, seconds, barrier, out, threads))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    walls = np.concatenate([np.asarray(w) for w, _ in results]) * 1000
    cpus = np.concatenate([np.asarray(c) for _, c in results]) * 1000
    rate = sum(len(w) for w, _ in results) * batch / seconds
    return (
        f"| {n} | {batch} | {np.median(walls):.2f} | {np.percentile(walls, 90):.2f} "
        f"| {np.median(cpus):.2f} | {rate:,.0f} |"
    )


def main(argv: list[str]) -> None:
    counts = [int(x) for x in (argv[0] if argv else "1,2,4").split(",")]
    batches = [int(x) for x in (argv[1] if len(argv) > 1 else "64,512,4096").split(",")]
    seconds = float(argv[2]) if len(argv) > 2 else 4.0
    w, c = (int(x) for x in (argv[3] if len(argv) > 3 else "128x1").split("x"))
    threads = int(os.environ.get("VAEWATCH_TORCH_THREADS", "1"))
    print(f"shape {w}x{c}, {seconds} s per row, torch threads {threads} per process")
    print("| processes | batch | batch ms p50 | p90 | CPU ms a batch p50 | windows/s, all |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch in batches:
        for n in counts:
            print(run(n, batch, seconds, (w, c), threads), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
