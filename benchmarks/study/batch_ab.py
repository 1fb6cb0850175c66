"""MAX_BATCH A/B (issue 14): the default worker (scoring process) draining a pre-filled topic
with VAEWATCH_MAX_BATCH set to each value in turn (order rotated every repetition), then the
latency of each at one offered rate (half the first setting's median windows/s), on one
embedded broker. Since batches adapt, MAX_BATCH=256 is the old fixed 256 and 1024 starts at
256 and grows while records are queued. Drains must hold many batches (128 x 1: 16,000
windows; 128 x 8 gets N/2, 128 x 38 N/8): a drain of a few batches measures the ramp.
Results of 2026-11-26: benchmarks/results/batch-ab.json. Usage (repo root, machine idle):
  .venv/bin/python -m benchmarks.study.batch_ab 16000 3 1,8 256,1024
Prints windows/s, cores and peak RSS per drain; medians, ratios to the first setting and
p50/p99 latency per setting at the end; JSON on the last line."""
import runpy
import sys

# the generic A/B of one worker variable, with VAEWATCH_MAX_BATCH as the variable
sys.argv[4:4] = ["VAEWATCH_MAX_BATCH"]
runpy.run_module("benchmarks.study.env_ab", run_name="__main__")
