"""Torch's thread count: cgroup v1/v2 quota parsing on fake trees, and the precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from vwbase.errors import UserInputError
from vwbase.threads import (
    ENV_VAR,
    apply_torch_threads,
    cgroup_cpu_quota,
    choose_threads,
    requested_threads,
    usable_cpus,
)

pytestmark = pytest.mark.unit


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def v2_tree(tmp_path: Path, own: str, parent: str = "max 100000") -> tuple[Path, Path]:
    root = tmp_path / "cg"
    put(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    put(root / "kubepods" / "cpu.max", f"{parent}\n")
    put(root / "kubepods" / "pod1" / "cpu.max", f"{own}\n")
    proc = put(tmp_path / "proc-cgroup", "0::/kubepods/pod1\n")
    return root, proc


def test_v2_quota_is_read_from_the_process_cgroup(tmp_path: Path) -> None:
    root, proc = v2_tree(tmp_path, "150000 100000")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)


def test_v2_a_parents_tighter_limit_applies(tmp_path: Path) -> None:
    root, proc = v2_tree(tmp_path, "400000 100000", parent="50000 100000")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)


def test_v2_max_means_no_limit(tmp_path: Path) -> None:
    root, proc = v2_tree(tmp_path, "max 100000")
    assert cgroup_cpu_quota(root, proc) is None


def test_v2_in_a_cgroup_namespace_reads_the_mount_root(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    put(root / "cgroup.controllers", "cpu\n")
    put(root / "cpu.max", "200000 100000\n")
    proc = put(tmp_path / "proc-cgroup", "0::/\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(2.0)


def test_v1_quota_over_period(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    put(root / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us", "300000\n")
    put(root / "cpu" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    proc = put(tmp_path / "proc-cgroup", "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(3.0)


def test_v1_minus_one_means_no_limit_and_host_paths_fall_back_to_the_mount(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cg"
    put(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    put(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    # the path names the host's hierarchy, not mounted in this container
    proc = put(tmp_path / "proc-cgroup", "3:cpu,cpuacct:/kubepods/burstable/pod9/c1\n")
    assert cgroup_cpu_quota(root, proc) is None
    put(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "50000\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "nothing", tmp_path / "no-proc") is None


@pytest.mark.parametrize(
    ("affinity", "quota", "expected"),
    [(16, None, 16), (16, 2.0, 2), (16, 1.5, 2), (16, 0.25, 1), (2, 8.0, 2), (4, 4.0000001, 4)],
)
def test_usable_cpus_is_affinity_capped_by_the_rounded_up_quota(
    affinity: int, quota: float | None, expected: int
) -> None:
    assert usable_cpus(affinity, quota) == expected


def test_precedence_setting_then_omp_then_auto() -> None:
    omp = {"OMP_NUM_THREADS": "3"}
    assert choose_threads(5, omp, 16, 2.0).threads == 5
    assert choose_threads(5, omp, 16, 2.0).source == ENV_VAR
    assert choose_threads(0, omp, 16, 2.0).threads == 3
    assert choose_threads(0, omp, 16, 2.0).source == "OMP_NUM_THREADS"
    auto = choose_threads(0, {}, 16, 3.0)
    assert (auto.threads, auto.source, auto.usable_cpus) == (2, "auto", 3)


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_auto_leaves_one_cpu_to_the_other_busy_thread(cpus: int, threads: int) -> None:
    assert choose_threads(0, {}, cpus, None).threads == threads


@pytest.mark.parametrize("omp", ["", "0", "-2", "many", " "])
def test_unusable_omp_num_threads_is_ignored(omp: str) -> None:
    assert choose_threads(0, {"OMP_NUM_THREADS": omp}, 4, None).source == "auto"


def test_omp_nested_list_counts_its_first_level() -> None:
    assert choose_threads(0, {"OMP_NUM_THREADS": "2,1"}, 8, None).threads == 2


def test_requested_threads_from_the_environment() -> None:
    assert requested_threads({}) == 0
    assert requested_threads({ENV_VAR: " 3 "}) == 3
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(UserInputError, match=ENV_VAR):
            requested_threads({ENV_VAR: bad})


def test_apply_sets_torch_and_honours_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv(ENV_VAR, "2")
    try:
        assert apply_torch_threads().threads == 2
        assert torch.get_num_threads() == 2
        monkeypatch.delenv(ENV_VAR)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert apply_torch_threads().source == "OMP_NUM_THREADS"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
