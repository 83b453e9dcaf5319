"""torch's thread count for training (sb3_dqn_atari.threads), on faked machines: affinity, cgroup quota, load.

Expected values are worked by hand from the rule ``max(1, usable − round(busy))`` (the module docstring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sb3_dqn_atari.agent.threads import (
    ThreadChoice,
    cgroup_cpu_quota,
    choose_threads,
    configure_torch_threads,
    usable_cpus,
)


def _fake(**kwargs: Any) -> ThreadChoice:
    defaults: dict[str, Any] = {"environ": {}, "quota": None, "apply": False}
    return configure_torch_threads(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("affinity", "load", "host", "expected"),
    [
        (2, 0.05, 2, 2),  # idle 2-core machine: both cores
        (2, 1.0, 2, 1),  # another training process on one core (issue 18's machine): one thread
        (2, 2.6, 2, 1),  # more load than cores: never below one
        (8, 3.2, 8, 5),  # 8 − round(3.2)
        (8, 3.5, 8, 4),  # halves round up: 8 − 4
        (4, 32.0, 64, 2),  # 4 of 64 host CPUs, host load 32: 2 busy on ours, 2 left
        (4, None, 4, 4),  # no load average: all usable CPUs
    ],
)
def test_choice_from_cpus_and_load(affinity: int, load: float | None, host: int, expected: int) -> None:
    choice = _fake(affinity=affinity, load=load, host_cpus=host)
    assert choice.threads == expected and choice.source == "chosen"
    assert choose_threads(affinity, load, host) == expected


def test_cgroup_quota_caps_the_cpus(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # docker --cpus 1.5
    assert cgroup_cpu_quota(v2) == 1.5 and usable_cpus(16, 1.5) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None and usable_cpus(16, None) == 16
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "none") is None  # no cgroup files at all
    # 16 CPUs in the affinity set, quota 1.5 CPUs, idle: 2 threads
    choice = _fake(affinity=16, quota=1.5, load=0.0, host_cpus=16)
    assert choice.threads == 2
    assert "2 usable CPU(s) of 16" in choice.describe()


def test_the_users_setting_wins() -> None:
    # OMP_NUM_THREADS in the environment (torch reads it itself), rl-zoo3's --num-threads (already applied)
    choice = _fake(environ={"OMP_NUM_THREADS": "3"}, affinity=2, load=0.0, host_cpus=2)
    assert (choice.threads, choice.source) == (3, "OMP_NUM_THREADS")
    assert choice.describe() == "torch threads: 3 (set by OMP_NUM_THREADS)"
    choice = _fake(num_threads_arg=4, environ={"OMP_NUM_THREADS": "3"}, affinity=2, load=0.0, host_cpus=2)
    assert (choice.threads, choice.source) == (4, "--num-threads")
    # rl-zoo3's default -1 and an empty or invalid OMP_NUM_THREADS are not a choice
    choice = _fake(num_threads_arg=-1, environ={"OMP_NUM_THREADS": ""}, affinity=2, load=1.0, host_cpus=2)
    assert (choice.threads, choice.source) == (1, "chosen")
    assert "load average 1.00" in choice.describe()


def test_apply_sets_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        choice = configure_torch_threads(environ={}, affinity=2, quota=None, load=5.0, host_cpus=2)
        assert choice.threads == 1 and torch.get_num_threads() == 1
        configure_torch_threads(environ={}, affinity=3, quota=None, load=0.0, host_cpus=3)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
