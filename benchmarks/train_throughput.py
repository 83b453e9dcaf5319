"""Training throughput of NatureDQN vs SB3's DQN with rl-zoo3's Atari hyperparameters, side by side.

Both agents are built from their rl-zoo3 hyperparameter files (rl-zoo3's own ``dqn.yml`` ``atari`` block for
SB3, our ``hyperparams/dqn.yml`` for NatureDQN) on the same game and seed, with ``learning_starts`` lowered to
``--warmup`` so that the measured steps are at steady state (one SGD update every 4 agent steps). The
agents are measured in alternating chunks (A, B, A, B, ...) in one process, so machine load hits both
alike; the median chunk speed of each is reported, with the ratio.

For NatureDQN it also reports where the time goes: env step, action selection, replay add, replay sample,
train step (without the sample), and the rest.

    python benchmarks/train_throughput.py --steps 3000 --warmup 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecFrameStack

ROOT = Path(__file__).resolve().parents[1]
NOT_MODEL_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy", "n_envs", "normalize"}


def zoo_hyperparams(path: Path, env_id: str) -> tuple[dict[str, Any], str]:
    """The hyperparameters rl-zoo3 would pass for ``env_id`` from ``path``, and the wrapper's dotted path."""
    table = yaml.safe_load(path.read_text())
    params = dict(table.get(env_id, table["atari"]))
    wrapper = params["env_wrapper"]
    wrapper = wrapper[0] if isinstance(wrapper, list) else wrapper
    return {k: v for k, v in params.items() if k not in NOT_MODEL_KEYS}, str(wrapper)


def build(agent: str, env_id: str, seed: int, warmup: int, device: str, mode: str) -> BaseAlgorithm:
    from rl_zoo3.utils import get_class_by_name

    if agent == "sb3":
        import rl_zoo3

        params, wrapper = zoo_hyperparams(Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml", env_id)
        cls: type[BaseAlgorithm] = DQN
    else:
        from sb3_dqn_atari import NatureDQN

        params, wrapper = zoo_hyperparams(ROOT / "hyperparams" / "dqn.yml", env_id)
        cls = NatureDQN
        if mode == "exact-nchw":  # exact mode in PyTorch's default conv layout instead of channels-last
            params["mode"], params["channels_last"] = "exact", False
        else:
            params["mode"] = mode
    params["learning_starts"] = warmup
    env = make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=get_class_by_name(wrapper))
    return cls("CnnPolicy", VecFrameStack(env, 4), seed=seed, device=device, **params)


class Timers:
    """Wraps bound methods of one model to accumulate their wall time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)


def instrument(model: BaseAlgorithm) -> Timers:
    timers = Timers()
    assert model.env is not None
    timers.wrap(model.env, "step_wait", "env step")
    timers.wrap(model, "predict", "action selection")
    timers.wrap(model.replay_buffer, "add", "replay add")  # type: ignore[attr-defined]
    timers.wrap(model.replay_buffer, "sample", "replay sample")  # type: ignore[attr-defined]
    timers.wrap(model, "train", "train step")
    return timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=2000, help="agent steps per measured chunk")
    parser.add_argument("--warmup", type=int, default=1000, help="learning_starts for both agents")
    parser.add_argument("--rounds", type=int, default=3, help="measured chunks per agent, alternating")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--mode", default="exact,fast", help="NatureDQN modes: exact, fast, exact-nchw (exact in NCHW layout)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ale_py

    gym.register_envs(ale_py)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = str(get_device(args.device))
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    agents = {"sb3": build("sb3", args.env, args.seed, args.warmup, device, "exact")}
    for mode in modes:
        agents[f"nature-{mode}"] = build("nature", args.env, args.seed, args.warmup, device, mode)
    for model in agents.values():  # fill past learning_starts: every measured step is steady state
        model.learn(args.warmup + 4, reset_num_timesteps=False)
    timers = {name: instrument(model) for name, model in agents.items() if name != "sb3"}
    speeds: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    for _ in range(args.rounds):
        for name, model in agents.items():
            start = time.perf_counter()
            model.learn(args.steps, reset_num_timesteps=False)
            elapsed = time.perf_counter() - start
            speeds[name].append(args.steps / elapsed)
            seconds[name] += elapsed
            print(f"  {name:14s} chunk: {args.steps / elapsed:7.1f} steps/s", flush=True)

    sb3_speed = statistics.median(speeds["sb3"])
    cpu = f"{torch.get_num_threads()} torch threads"
    print(f"\n{args.env}, device={device} ({cpu}), {date.today().isoformat()}, median of {args.rounds} chunks")
    print(f"{'agent':32s} {'steps/s':>9s} {'ratio':>7s}")
    print(f"{'SB3 DQN + rl-zoo3 atari':32s} {sb3_speed:9.1f} {1.0:6.2f}x")
    for mode in modes:
        ours = statistics.median(speeds[f"nature-{mode}"])
        print(f"{'NatureDQN (' + mode + ')':32s} {ours:9.1f} {ours / sb3_speed:6.2f}x")

    for name, timer in timers.items():
        print(f"\n{name}: time per agent step")
        n_steps = args.steps * args.rounds
        total = seconds[name] / n_steps
        parts = dict(timer.seconds)
        parts["train step"] -= parts.get("replay sample", 0.0)  # sample is called inside train
        counted = 0.0
        for label in ("env step", "action selection", "replay add", "replay sample", "train step"):
            per_step = parts.get(label, 0.0) / n_steps
            counted += per_step
            print(f"  {label:18s} {per_step * 1e6:9.1f} us  {100 * per_step / total:5.1f}%")
        print(f"  {'other':18s} {(total - counted) * 1e6:9.1f} us  {100 * (total - counted) / total:5.1f}%")


if __name__ == "__main__":
    main()
