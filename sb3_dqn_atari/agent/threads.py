"""How many threads torch's intra-op pool gets for training, chosen from the CPUs this process may use and the
load already on them.

torch starts one intra-op thread per core it sees (``os.cpu_count()``). Next to another busy process that
oversubscribes the cores: on this project's 2-core machine a 1,500-step Breakout run took 80.5 s with torch's
default 2 threads while another training process ran, and 22.8 s with one thread (issue 18); two such processes
with default threads run 3.5× slower than with one each. So, unless the user chose (``OMP_NUM_THREADS`` in the
environment, or rl-zoo3's ``--num-threads N``), training uses

    threads = max(1, usable − round(busy))

* ``usable``: the CPUs this process may run on, ``len(os.sched_getaffinity(0))`` (a cpuset, ``taskset``,
  Slurm's binding), capped by the cgroup's CPU quota rounded up (a container's ``--cpus``: cgroup v2's
  ``cpu.max``, v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).
* ``busy``: the 1-minute load average (``os.getloadavg``, runnable tasks), which counts the whole machine; when
  this process may use only part of it, the part on its CPUs is taken as proportional
  (``load × usable / os.cpu_count()``). This process's own start (a few seconds) adds little to a 1-minute average.

Each thread then has a core of its own. The choice is made once, when training starts
(:mod:`sb3_dqn_atari.zoo.run`), and printed in the run's first lines.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThreadChoice", "cgroup_cpu_quota", "choose_threads", "configure_torch_threads", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and where it came from."""

    threads: int
    #: ``"OMP_NUM_THREADS"``, ``"--num-threads"`` (the user's) or ``"chosen"`` (ours)
    source: str
    usable: int | None = None
    host_cpus: int | None = None
    load: float | None = None

    def describe(self) -> str:
        if self.source != "chosen":
            return f"torch threads: {self.threads} (set by {self.source})"
        load = "load average unknown" if self.load is None else f"1-minute load average {self.load:.2f}"
        share = "" if self.usable == self.host_cpus else f" of {self.host_cpus}"
        return (
            f"torch threads: {self.threads} (chosen: {self.usable} usable CPU(s){share}, {load}; "
            "set OMP_NUM_THREADS or --num-threads to choose)"
        )


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup's quota allows (``quota / period``), or None without a quota (or without cgroups)."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
        return None if quota == "max" else int(quota) / int(period)
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1: -1 means no quota
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cpus(affinity: int, quota: float | None) -> int:
    """CPUs this process may use: its affinity set, capped by the cgroup quota rounded up."""
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota)))


def choose_threads(usable: int, load: float | None, host_cpus: int) -> int:
    """``max(1, usable − round(busy))`` where ``busy`` is the load on the usable CPUs (see the module docstring)."""
    if load is None:
        return usable
    busy = load * usable / host_cpus if host_cpus > usable else load
    return max(1, usable - math.floor(busy + 0.5))


def _user_setting(environ: Mapping[str, str], num_threads_arg: int | None) -> ThreadChoice | None:
    if num_threads_arg is not None and num_threads_arg > 0:
        return ThreadChoice(num_threads_arg, "--num-threads")
    value = environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return ThreadChoice(int(value), "OMP_NUM_THREADS")
    return None


def configure_torch_threads(
    num_threads_arg: int | None = None,
    environ: Mapping[str, str] | None = None,
    affinity: int | None = None,
    quota: float | str | None = "read",
    load: float | str | None = "read",
    host_cpus: int | None = None,
    apply: bool = True,
) -> ThreadChoice:
    """Choose torch's intra-op thread count for training and set it (``apply``), unless the user set one.

    Every input defaults to this machine's (``os.environ``, ``os.sched_getaffinity``, the cgroup quota,
    ``os.getloadavg``, ``os.cpu_count``); tests pass their own. ``num_threads_arg`` is rl-zoo3's ``--num-threads``
    (``-1``: not given)."""
    env = os.environ if environ is None else environ
    user = _user_setting(env, num_threads_arg)
    if user is not None:
        return user  # OMP_NUM_THREADS is read by torch itself; rl-zoo3 has applied --num-threads
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if quota == "read":
        quota = cgroup_cpu_quota()
    if load == "read":
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = None
    host = host_cpus if host_cpus is not None else (os.cpu_count() or affinity)
    assert not isinstance(quota, str) and not isinstance(load, str)
    usable = usable_cpus(affinity, quota)
    choice = ThreadChoice(choose_threads(usable, load, host), "chosen", usable, host, load)
    if apply:
        import torch

        torch.set_num_threads(choice.threads)
    return choice
