"""CPU per window of score + correct, posterior mean (n_samples=0) against L=8 samples
(docs/quality.md, thirteenth screen). Usage (repo root): PYTHONPATH=. .venv/bin/python
benchmarks/study/n_samples_cost.py"""
from dataclasses import replace
import torch
from benchmarks.speed import build_detector, compute_cpu_per_window
torch.set_num_threads(1)
for channels in (1, 8, 38):
    base = build_detector(128, channels, "cpu")
    sampled = replace(base, n_samples=8)
    runs = {0: [], 8: []}
    for _ in range(3):
        for n, det in ((0, base), (8, sampled)):
            runs[n].append(compute_cpu_per_window(det, 128, channels, 1024) * 1e6)
    m0, m8 = sorted(runs[0])[1], sorted(runs[8])[1]
    print(f"128x{channels}: L=0 {m0:.0f} us/window, L=8 {m8:.0f} us/window, ratio {m8/m0:.2f}; runs {[round(x) for x in runs[0]]} {[round(x) for x in runs[8]]}", flush=True)
