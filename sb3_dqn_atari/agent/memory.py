"""Fail early when the replay memory a run will fill does not fit in free memory.

The replay arrays (SB3's ``ReplayBuffer`` and :class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer` alike) are
allocated with ``np.zeros``: the pages are mapped lazily and become resident as the ring fills, so a 1M
buffer that does not fit is not noticed until the kernel kills the process, ~800,000 steps into the run.
:func:`check_replay_memory` runs when ``learn`` starts (``NatureDQN._setup_learn``), before the first
transition is stored, and raises :class:`ReplayMemoryError` with one line: the bytes needed, the bytes
available, and the ``buffer_size`` that would fit.

Cost per transition is measured on the buffer itself: every array (numpy, or torch tensor on the CPU or
a GPU) whose leading dimension is the ring size, i.e. 7,056 bytes of frame plus 36 bytes of bookkeeping
for an 84×84 :class:`FrameReplayBuffer` slot, 56,448 + 24 for SB3's stacked ``ReplayBuffer``, plus the sum
tree of :class:`~sb3_dqn_atari.agent.prioritized.PrioritizedFrameReplayBuffer` (float64 nodes, twice the ring rounded
up to a power of two: 16.8 bytes per transition at 1M), spread over the ring's slots. A headroom of
``HEADROOM`` (5%) is added for what grows beside the ring: the first states of episodes (FrameReplayBuffer's
start store holds about one frame per episode, i.e. ~3% of the frames with Breakout's ~35-step lives) and
the allocator. Available memory is ``psutil.virtual_memory().available``, capped by the cgroup (container)
limit; frames kept on a GPU are compared with ``torch.cuda.mem_get_info``.

Skip the check with ``SB3_DQN_ATARI_SKIP_MEMORY_CHECK=1`` (e.g. when swap is meant to hold the buffer).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.buffers import BaseBuffer

from sb3_dqn_atari.agent.sum_tree import SumTree

#: extra fraction of the ring's bytes reserved for the start store and the allocator
HEADROOM = 0.05
#: environment variable that turns the check off
SKIP_ENV_VAR = "SB3_DQN_ATARI_SKIP_MEMORY_CHECK"


class ReplayMemoryError(MemoryError):
    """The replay memory of this run would not fit in free memory (raised before it fills)."""


def slot_nbytes(buffer: BaseBuffer) -> tuple[int, int]:
    """Bytes one ring slot (one ``add`` of the ``n_envs`` transitions) takes: ``(host, gpu)``.

    Sums, over the buffer's attributes (and the values of its dict attributes) that are arrays of leading
    dimension ``buffer.buffer_size``, their size divided by that dimension; a :class:`SumTree` (allocated for the
    whole ring) adds its bytes divided by the ring size, rounded up.
    """
    host = gpu = 0
    arrays = []
    for value in vars(buffer).values():  # DictReplayBuffer keeps a dict of arrays per observation key
        arrays += list(value.values()) if isinstance(value, dict) else [value]
    for value in arrays:
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == buffer.buffer_size:
            host += value.nbytes // buffer.buffer_size
        elif isinstance(value, th.Tensor) and value.ndim and value.shape[0] == buffer.buffer_size:
            nbytes = value.element_size() * value.numel() // buffer.buffer_size
            if value.device.type == "cpu":
                host += nbytes
            else:
                gpu += nbytes
        elif isinstance(value, SumTree):
            host += math.ceil(value.nbytes / buffer.buffer_size)
    return host, gpu


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available() -> int | None:
    """Bytes the cgroup (container) limit still allows, or ``None`` without a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base = Path("/sys/fs/cgroup") / relative.lstrip("/")
            limit, usage = _read_int(base / "memory.max"), _read_int(base / "memory.current")
            inactive_key = "inactive_file"
        elif "memory" in controllers.split(","):  # cgroup v1
            base = Path("/sys/fs/cgroup/memory") / relative.lstrip("/")
            if not base.exists():
                base = Path("/sys/fs/cgroup/memory")
            limit, usage = _read_int(base / "memory.limit_in_bytes"), _read_int(base / "memory.usage_in_bytes")
            inactive_key = "total_inactive_file"
        else:
            continue
        if limit is None or usage is None or limit >= 1 << 60:  # "max", or v1's "no limit"
            continue
        reclaimable = 0
        with contextlib.suppress(OSError, ValueError):
            for stat in (base / "memory.stat").read_text().splitlines():
                key, _, value = stat.partition(" ")
                if key == inactive_key:
                    reclaimable = int(value)
        return max(0, limit - usage + reclaimable)
    return None


def available_memory() -> int:
    """Bytes this process can still make resident: psutil's ``available``, capped by a cgroup limit."""
    import psutil

    available = int(psutil.virtual_memory().available)
    limit = _cgroup_available()
    return available if limit is None else min(available, limit)


def _gpu_available(buffer: BaseBuffer) -> int:
    device = buffer.device if buffer.device.type == "cuda" else th.device("cuda")
    return int(th.cuda.mem_get_info(device)[0])


def _fitting_size(slots: int, n_envs: int) -> int:
    """``buffer_size`` (transitions, all envs) for ``slots`` ring slots, rounded down to a round number."""
    size = max(slots, 0) * n_envs
    if size >= 10_000:
        size -= size % 1_000
    return size


def check_replay_memory(buffer: BaseBuffer, steps: int) -> None:
    """Raise :class:`ReplayMemoryError` if storing ``steps`` more agent steps in ``buffer`` would not fit.

    The slots still to fill are ``min(ring size, filled + ceil(steps / n_envs)) - filled``; the filled ones
    are already resident and counted in the available memory.

    :param buffer: the (lazily allocated) replay buffer
    :param steps: agent steps, all envs together, the coming ``learn`` will take
    """
    if os.environ.get(SKIP_ENV_VAR, "") not in ("", "0"):
        return
    filled = buffer.buffer_size if getattr(buffer, "full", False) else int(getattr(buffer, "pos", 0))
    to_fill = min(buffer.buffer_size, filled + math.ceil(max(steps, 0) / buffer.n_envs)) - filled
    if to_fill <= 0:
        return
    host_slot, gpu_slot = slot_nbytes(buffer)
    for where, per_slot in (("memory", host_slot), ("GPU memory", gpu_slot)):
        if per_slot == 0:
            continue
        needed = math.ceil(to_fill * per_slot * (1 + HEADROOM))
        try:
            available = available_memory() if where == "memory" else _gpu_available(buffer)
        except (ImportError, RuntimeError):  # no psutil / no CUDA: nothing to compare with
            continue
        if needed <= available:
            continue
        fits = _fitting_size(filled + math.floor(available / (per_slot * (1 + HEADROOM))), buffer.n_envs)
        n_transitions = to_fill * buffer.n_envs
        raise ReplayMemoryError(
            f"the replay memory needs {needed:,} more bytes of {where} ({n_transitions:,} transitions x "
            f"{per_slot // buffer.n_envs:,} bytes + {HEADROOM:.0%}) but only {available:,} are available: "
            f"use buffer_size={fits:,} or less, or free memory (set {SKIP_ENV_VAR}=1 to start anyway)"
        )
