"""How many CPU threads torch may use here: one answer for `worker`, `train` and `score`.

`os.cpu_count()` is the host's core count, not what this process may use: in a container
with a CPU limit, under `taskset`, or in a Kubernetes pod it can be many times too high, and
torch's intra-op pool then runs more threads than there are CPUs. Its threads spin at each
barrier and wait for one another when the scheduler preempts them: on a shared 2-core host
that cost 4-8x (issue 15). So the count comes from what the kernel will actually give:

    usable CPUs = min(CPUs in the affinity mask, ceil(cgroup CPU quota))

with the quota read from cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us / cpu.cfs_period_us`,
along the process's own cgroup path up to the mount root (a parent's limit applies too).
Fractional quotas round up, as Java's `availableProcessors()` and Go's GOMAXPROCS do.

Precedence: `VAEWATCH_TORCH_THREADS` (> 0) > `OMP_NUM_THREADS` > auto, where

    auto = max(1, usable CPUs - 1)

One CPU is left to the process's other busy thread (the worker's poll/decode/encode/send
thread; CSV parsing and report drawing in `train`) and to whatever else runs on the host:
torch's pool stalls whenever one of its threads is descheduled. On 2 CPUs that is one
thread, the best of 1, 2 and all-usable measured by `make bench` (`--threads-only`) on a
shared machine and with a CPU hog beside it (docs/benchmarks.md, "Torch threads"); training agreed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from vwbase.errors import UserInputError

log = structlog.get_logger(__name__)

ENV_VAR = "VAEWATCH_TORCH_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and why: logged at start so an operator can see what was decided."""

    threads: int
    source: str  # ENV_VAR, "OMP_NUM_THREADS" or "auto"
    usable_cpus: int
    affinity_cpus: int
    cgroup_quota: float | None  # CPUs, None = no limit found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 path of the `cpu` controller) from /proc/self/cgroup's lines."""
    v2 = v1 = None
    for line in proc_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _dirs_up(mount: Path, path: str | None) -> list[Path]:
    """`mount/path`, its parents, up to and including `mount`: each may carry a limit.

    Inside a container without a cgroup namespace the path names the host's hierarchy,
    which is not mounted there; the mount root (the container's own cgroup) still is.
    """
    rel = Path((path or "/").lstrip("/"))
    out = [mount / p for p in [rel, *rel.parents] if str(p) != "."]
    return [*out, mount]


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None  # -1 = no limit


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup and its ancestors, or None.

    cgroup v2 when `root` is a unified hierarchy (it has `cgroup.controllers`), else v1's
    `cpu` controller (mounted as `cpu` or `cpu,cpuacct`); on a hybrid host the v1 `cpu`
    controller is the one that enforces quotas.
    """
    v2_path, v1_path = _cgroup_paths(_read(proc_cgroup) or "")
    if (root / "cgroup.controllers").exists():
        quotas = [_v2_quota(d) for d in _dirs_up(root, v2_path)]
    else:
        mount = next((root / n for n in ("cpu", "cpu,cpuacct") if (root / n).is_dir()), None)
        if mount is None:
            return None
        quotas = [_v1_quota(d) for d in _dirs_up(mount, v1_path)]
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def affinity_cpus() -> int:
    """CPUs this process may run on (cpuset, taskset); the core count where that is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def usable_cpus(affinity: int, quota: float | None) -> int:
    """min(affinity, ceil(quota)), at least 1."""
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota - 1e-9)))


def _positive_int(text: str | None) -> int | None:
    """OpenMP's format: an int, or a comma list (nested levels) whose first entry counts."""
    if not text:
        return None
    try:
        value = int(text.split(",")[0].strip())
    except ValueError:
        return None
    return value if value > 0 else None


def requested_threads(env: Mapping[str, str]) -> int:
    """`VAEWATCH_TORCH_THREADS` from the environment: 0 (or unset) = auto."""
    text = env.get(ENV_VAR, "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UserInputError(f"{ENV_VAR}={text!r}: must be an integer >= 0 (0 = auto)")
    return value


def auto_threads(cpus: int) -> int:
    """All usable CPUs but one (for the process's other busy thread), at least 1."""
    return max(1, cpus - 1)


def choose_threads(
    requested: int, env: Mapping[str, str], affinity: int, quota: float | None
) -> ThreadChoice:
    """Precedence: `requested` (VAEWATCH_TORCH_THREADS) > OMP_NUM_THREADS > auto."""
    cpus = usable_cpus(affinity, quota)
    omp = _positive_int(env.get("OMP_NUM_THREADS"))
    if requested > 0:
        threads, source = requested, ENV_VAR
    elif omp is not None:
        threads, source = omp, "OMP_NUM_THREADS"
    else:
        threads, source = auto_threads(cpus), "auto"
    return ThreadChoice(threads, source, cpus, affinity, quota)


def apply_torch_threads(requested: int | None = None, share: int | None = None) -> ThreadChoice:
    """Choose and set torch's intra-op thread count; call once at an entry point's start.

    `requested` is the worker's `torch_threads` setting; None reads `VAEWATCH_TORCH_THREADS`
    (the batch commands have no settings object). Torch reads OMP_NUM_THREADS itself, but
    only as its own default: setting the count here, from one rule, is what makes every
    entry point agree. `share`: the CPUs this process may count as its own, when it is one
    of several worker processes (`worker.supervisor`); None = all it may use.
    """
    import torch

    if requested is None:
        requested = requested_threads(os.environ)
    if share is None:
        choice = choose_threads(requested, os.environ, affinity_cpus(), cgroup_cpu_quota())
    else:
        choice = choose_threads(requested, os.environ, share, None)
    torch.set_num_threads(choice.threads)
    # debug: a batch command's stderr stays one line on a user error; the worker reports the
    # choice in its `worker_starting` event
    log.debug(
        "torch_threads",
        threads=choice.threads,
        source=choice.source,
        usable_cpus=choice.usable_cpus,
        affinity_cpus=choice.affinity_cpus,
        cgroup_quota=choice.cgroup_quota,
        host_cpus=os.cpu_count(),
    )
    return choice
