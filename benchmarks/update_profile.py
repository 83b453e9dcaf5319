"""Where one NatureDQN update's time goes, by kind of work, on this machine (torch.profiler, CPU).

Builds NatureDQN (``hyperparams/dqn.yml``) on Breakout with a small replay memory, fills it with random play,
then profiles ``--updates`` calls of ``train`` (one SGD update each: sample, both networks' forward, backward,
optimizer, target check) and groups the operators' own time:

* conv forward / conv backward: oneDNN's convolutions (``aten::mkldnn_convolution``, ``convolution_backward``);
* matmul: the fully connected layers' GEMMs (``addmm``, ``mm``);
* input conversion: uint8 frames to float32 (``copy_`` to float and to the conv layout, ``div`` by 255);
* optimizer: everything inside :class:`~sb3_dqn_atari.optim.DeepMindRMSprop`'s ``step`` (element-wise passes);
* other: activations, loss, gathers, sampling, autograd bookkeeping.

To see an AVX2-only CPU's kernels on a newer one, cap oneDNN, ATen and MKL (an emulation: same cores, caches and
memory, only the instruction sets are limited)::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python benchmarks/update_profile.py --mode exact,exact-nchw

``ONEDNN_VERBOSE=1`` prints the kernel oneDNN runs for each convolution (``brg_conv_fwd:avx2``, ...).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("conv forward", "conv backward", "matmul", "input conversion", "optimizer", "other")
#: the environment variables that cap the instruction sets (reported with the results)
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def build(mode: str, seed: int) -> Any:
    import ale_py
    from rl_zoo3.utils import get_class_by_name

    from sb3_dqn_atari import NatureDQN

    gym.register_envs(ale_py)
    params = dict(yaml.safe_load((ROOT / "hyperparams" / "dqn.yml").read_text())["atari"])
    wrapper = params.pop("env_wrapper")
    for key in ("frame_stack", "n_timesteps", "policy"):
        params.pop(key, None)
    params.update(buffer_size=5_000, learning_starts=1_000, mode="exact" if mode.startswith("exact") else mode)
    if mode == "exact-nchw":
        params["channels_last"] = False
    wrapper_class = get_class_by_name(wrapper[0] if isinstance(wrapper, list) else wrapper)
    env = make_vec_env("BreakoutNoFrameskip-v4", n_envs=1, seed=seed, wrapper_class=wrapper_class)
    model = NatureDQN("CnnPolicy", VecFrameStack(env, 4), seed=seed, device="cpu", **params)
    if mode == "exact-mixed":  # channels-last but the first conv: no conversion of the 4-frame input
        for net in (model.q_net, model.q_net_target):
            next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return model


def category(name: str, shapes: list[Any]) -> str:
    if name == "aten::mkldnn_convolution":
        return "conv forward"
    if name == "aten::convolution_backward":
        return "conv backward"
    if name in ("aten::addmm", "aten::mm"):
        return "matmul"
    if name in ("aten::copy_", "aten::div", "aten::div_") and shapes and len(shapes[0]) == 4 and shapes[0][1] == 4:
        return "input conversion"  # (batch, 4 frames, 84, 84): the observations, not the 4-D weights
    return "other"


def _in_optimizer(event: Any) -> bool:
    while event is not None:
        if event.name.startswith("Optimizer.step"):
            return True
        event = event.cpu_parent
    return False


def profile_updates(model: Any, updates: int) -> tuple[dict[str, float], float]:
    """Milliseconds per update by category (operators' self time), and the median wall time per update."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(updates):
            model.train(1, model.batch_size)
    per_update: dict[str, float] = defaultdict(float)
    for event in prof.events():
        kind = "optimizer" if _in_optimizer(event) else category(event.name, event.input_shapes)
        per_update[kind] += event.self_cpu_time_total / 1e3 / updates
    walls = []
    for _ in range(updates):
        start = time.perf_counter()
        model.train(1, model.batch_size)
        walls.append(time.perf_counter() - start)
    return dict(per_update), statistics.median(walls) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mode", default="exact,exact-nchw", help="exact, exact-nchw, exact-mixed (NCHW first conv), fast"
    )
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from sb3_dqn_atari.agent.hardware import detect

    caps = ", ".join(f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)) or "none"
    print(f"host: {detect('cpu').describe()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(f"instruction-set caps: {caps}")
    for mode in (m.strip() for m in args.mode.split(",") if m.strip()):
        model = build(mode, args.seed)
        model.learn(model.learning_starts + 4)
        for _ in range(10):  # warm up: oneDNN builds its kernels, the allocator settles
            model.train(1, model.batch_size)
        parts, wall = profile_updates(model, args.updates)
        total = sum(parts.values())
        print(f"\n{mode}: {wall:.2f} ms per update (median wall time, not profiled); operators' own time:")
        for name in CATEGORIES:
            print(f"  {name:18s} {parts.get(name, 0.0):7.2f} ms  {100 * parts.get(name, 0.0) / total:5.1f}%")


if __name__ == "__main__":
    main()
