"""Is it Dopamine's network? The paper's agent on Dopamine's settings, with Dopamine's DQN network (issue 14).

Dopamine's DQN (google/dopamine, the runs of ``baselines/atari/data/<game>.json``) learns Breakout faster than
NatureDQN on the same settings (``hyperparams/dqn_dopamine.yml``: sticky actions, no no-op starts, no life-loss
terminal, replay start 20,000, target every 8,000 steps, ε → 0.01 over 250,000; the same optimizer, loss and memory).
One difference is left in the agent: Dopamine's ``atari_lib.nature_dqn_network`` is not the paper's network. It is
built with ``slim.conv2d`` and ``slim.fully_connected`` at slim's defaults: 'SAME' padding (84 → 21 → 11 → 11, so
11 x 11 x 64 = 7,744 features into the 512-unit layer, against the paper's 7 x 7 x 64 = 3,136 with no padding),
Xavier-uniform weights and zero biases (the paper, and PyTorch's default: weights and biases U(±1/sqrt(fan_in))).
This script trains NatureDQN with ``dqn_dopamine.yml``'s settings and that network, nothing else changed, and prints
the mean score of its training games per 100,000 agent steps; ``--compare`` sets the ``dqn_dopamine.yml`` run
with the paper's network beside it (``python -m sb3_dqn_atari.train --algo dqn --env BreakoutNoFrameskip-v4 -conf
hyperparams/dqn_dopamine.yml --seed 0 -n 500000 -f logs``), counted the same way and up to the same step. Hours on
a CPU:

    python benchmarks/dopamine_network.py --env BreakoutNoFrameskip-v4 --steps 500000 --seed 0 \\
        --out logs/dopamine_network --compare logs/dqn/BreakoutNoFrameskip-v4_1

Outputs in ``--out``: SB3's ``0.monitor.csv`` (whole games, raw score; the Monitor is under the wrapper) and the
table on stdout (agent steps counted as the Monitor's emulator frames / 4: exact here, where a lost life does not
cut an action repeat short and no no-ops are played, but for the last step of each game).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import torch
from gymnasium import spaces
from rl_zoo3.utils import get_wrapper_class
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecFrameStack
from stable_baselines3.dqn import policies as sb3_policies
from zoo_ab import BUCKET, StopAt, games, per_bucket  # this folder's: as zoo_ab counts the Monitor's games

from sb3_dqn_atari.agent.dqn import NatureDQN
from sb3_dqn_atari.agent.hardware import detect
from sb3_dqn_atari.agent.policies import CnnPolicy
from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]
YML = ROOT / "hyperparams" / "dqn_dopamine.yml"
#: yml keys that are not NatureDQN arguments (the env is built here)
NOT_MODEL_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy"}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's 'SAME' padding of one spatial dimension: (before, after, output size). The output is
    ceil(size / stride); the padding that needs is split with the odd pixel after (TF's rule)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class DopamineCNN(BaseFeaturesExtractor):
    """Dopamine's ``nature_dqn_network`` up to its 512-unit layer: slim's 'SAME' convolutions (32 8x8/4, 64 4x4/2,
    64 3x3/1), ReLUs, a 512-unit ReLU layer; Xavier-uniform weights, zero biases (slim's defaults)."""

    LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))

    def __init__(self, observation_space: spaces.Box, features_dim: int = 512, normalized_image: bool = False) -> None:
        channels, size, _ = observation_space.shape
        modules: list[torch.nn.Module] = []
        for out_channels, kernel, stride in self.LAYERS:
            before, after, size_out = same_padding(size, kernel, stride)
            modules += [
                torch.nn.ZeroPad2d((before, after, before, after)),
                torch.nn.Conv2d(channels, out_channels, kernel, stride),
                torch.nn.ReLU(),
            ]
            channels, size = out_channels, size_out
        n_flatten = channels * size * size
        super().__init__(observation_space, features_dim)
        self.cnn = torch.nn.Sequential(*modules, torch.nn.Flatten())
        self.linear = torch.nn.Sequential(torch.nn.Linear(n_flatten, features_dim), torch.nn.ReLU())
        xavier_zero(self)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


def xavier_zero(module: torch.nn.Module) -> None:
    """slim's defaults on every conv and linear layer of ``module``: Xavier-uniform weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)


class DopamineCnnPolicy(CnnPolicy):
    """This project's ``CnnPolicy`` (random tie-breaking) with Dopamine's network; its output layer,
    ``Linear(512, n_actions)`` as the paper's, initialised as Dopamine's (Xavier-uniform, zero bias)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(features_extractor_class=DopamineCNN, net_arch=[])
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> sb3_policies.QNetwork:
        q_net = super().make_q_net()
        xavier_zero(q_net.q_net)  # the target network copies these weights (DQNPolicy._build)
        return q_net


def build(env_id: str, seed: int, out: Path) -> NatureDQN:
    """NatureDQN with every setting of ``dqn_dopamine.yml`` for ``env_id`` and Dopamine's network."""
    gym.register_envs(ale_py)
    config = read_yaml_mapping(YML)
    hyperparams = dict(config.get(env_id, config["atari"]))
    env = make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=get_wrapper_class(hyperparams), monitor_dir=str(out))
    env = VecFrameStack(env, n_stack=int(hyperparams["frame_stack"]))
    kwargs = {k: v for k, v in hyperparams.items() if k not in NOT_MODEL_KEYS}
    return NatureDQN(DopamineCnnPolicy, env, seed=seed, verbose=0, **kwargs)


def table(out: Path, compare: Path | None) -> str:
    """Training games per ``BUCKET`` agent steps of the run in ``out`` and, with ``compare``, of that run up to the
    same step (the last row ends at ``out``'s last game)."""
    played = games(out)
    end = played[-1][0] + 1 if played else 0
    runs = [per_bucket(played, end)]
    header = "| agent steps | dqn_dopamine.yml, Dopamine's network |"
    if compare is not None:
        runs.append(per_bucket([(s, r) for s, r in games(compare) if s < end], end))
        header += f" {compare.name}: the paper's network |"
    lines = [header, "|---" * (len(runs) + 1) + "|"]
    for lo in sorted(runs[0]):
        cells = [f"{run[lo][0]:.2f} ({run[lo][1]:,} games)" if lo in run else "-" for run in runs]
        lines.append(f"| {lo:,}–{min(lo + BUCKET, end - 1):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=500_000, help="agent steps to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the run's Monitor file")
    parser.add_argument("--report-only", action="store_true", help="print the table of a finished run")
    parser.add_argument("--compare", type=Path, help="run folder of dqn_dopamine.yml with the paper's network")
    args = parser.parse_args()
    if args.report_only and not (args.out / "0.monitor.csv").is_file():
        raise SystemExit(f"{args.out} has no 0.monitor.csv: run without --report-only first")
    if args.compare is not None and not any(args.compare.glob("*.monitor.csv")):
        raise SystemExit(f"--compare {args.compare}: no Monitor file there (give the run folder)")
    if not args.report_only:
        if (args.out / "0.monitor.csv").exists():
            raise SystemExit(f"{args.out} already holds a run: choose another --out, or --report-only")
        args.out.mkdir(parents=True, exist_ok=True)
        model = build(args.env, args.seed, args.out)
        print(
            f"{args.env}, seed {args.seed}, {args.steps:,} agent steps on {detect('cpu').describe()}; "
            f"{YML.name}'s settings, Dopamine's network:\n{model.q_net}",
            flush=True,
        )
        model.learn(args.steps, callback=StopAt(args.steps, args.out))
    print(table(args.out, args.compare))


if __name__ == "__main__":
    main()
