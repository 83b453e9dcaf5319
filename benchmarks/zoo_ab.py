"""Is it the pipeline or the agent? The RL Zoo's published DQN run with one half swapped for this project's, trained
on the same game and compared with it at equal agent steps (issue 14).

The RL Zoo's DQN (``../shared/reference/rl-zoo-dqn/<game>/``: SB3's ``DQN``, Adam 1e-4, ε 1 → 0.01 over 1M steps,
SB3's ``AtariWrapper``) learns Breakout from its first 200k steps (training games 3.6 points over 200k–300k, 8.5
over 500k–600k; random play 1.7); NatureDQN on ``hyperparams/dqn_short_schedule.yml`` stayed near random play to 750k
steps. The two differ in the agent (DeepMind's RMSProp on the summed clipped-error loss, no gradient clipping, the
schedule) and in the pipeline under it: the frames (:class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper`: a
lost life terminal for the learner and 1–30 no-ops after it, torch7's resize, no FIRE on reset) and the replay
memory (:class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer`). Each arm keeps one half of the RL Zoo's run, built
from the reference run's own ``config.yml`` (read with the safe loader), and swaps in the other:

``--arm pipeline``
    the RL Zoo's agent (SB3's ``DQN``, every hyperparameter of ``config.yml``) on this project's frames and replay
    memory. If its training games follow the RL Zoo's, the frames, the life-loss handling and the replay memory
    are not what holds NatureDQN back. One difference stays and is named: ``AtariWrapper`` presses FIRE after every
    reset and lost life, the paper's pipeline does not (DeepMind's code has no FIRE), so here the agent has to learn
    to serve.
``--arm agent``
    the paper's agent (:class:`~sb3_dqn_atari.agent.dqn.NatureDQN`: DeepMind's RMSProp at the paper's 2.5e-4, the
    summed clipped-error loss, no gradient clipping) on the RL Zoo's pipeline (``AtariWrapper``) and schedule
    (``config.yml``'s replay size and start, target period, ε, update frequency). What is left between it and the
    RL Zoo's run is the optimizer and its loss (and this project's replay memory, which ``--arm pipeline`` checks).

``--set KEY=VALUE`` (repeatable) changes one of ``config.yml``'s hyperparameters for this run (the value read with
``yaml.safe_load``), e.g. ``--arm agent --set target_update_interval=10000``: the paper's target period on the RL
Zoo's schedule. The table and the PNG name what was changed.

Outputs in ``--out``: SB3's ``0.monitor.csv`` (whole games, raw score: the Monitor is under the wrapper, as in the
RL Zoo's run), ``games.png`` (both runs' training games, mean per 100k agent steps) and the same table on stdout.
Hours on a CPU (the RL Zoo's schedule starts learning at 100k steps):

    OMP_NUM_THREADS=1 python benchmarks/zoo_ab.py --arm pipeline --env BreakoutNoFrameskip-v4 --steps 500000 \\
        --seed 0 --out logs/zoo_ab_pipeline
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3 import DQN
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import load_results
from stable_baselines3.common.vec_env import VecFrameStack

from sb3_dqn_atari.agent.dqn import NatureDQN
from sb3_dqn_atari.agent.hardware import detect
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "rl-zoo-dqn"
#: config.yml keys that are not DQN arguments (the env is built here; the replay memory is this project's).
NOT_MODEL_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy", "optimize_memory_usage"}
#: what each arm takes from this project, for the table's header
ARMS = {
    "pipeline": "SB3 DQN on NatureAtariWrapper + FrameReplayBuffer",
    "agent": "NatureDQN (DeepMind RMSProp 2.5e-4, summed loss) on AtariWrapper",
}
ZOO_WRAPPER = "stable_baselines3.common.atari_wrappers.AtariWrapper"
BUCKET = 100_000


class StopAt(BaseCallback):
    """Stop at ``steps`` agent steps (``learn`` runs with the reference's ``n_timesteps``, so that ε decays over the
    same steps: ``exploration_fraction`` is a fraction of the total), with a progress line every 25,000."""

    def __init__(self, steps: int, folder: Path) -> None:
        super().__init__()
        self.steps = steps
        self.folder = folder
        self.started = time.monotonic()

    def _on_step(self) -> bool:
        if self.num_timesteps % 25_000 == 0:
            played = games(self.folder)[-20:] if any(self.folder.glob("*.monitor.csv")) else []
            mean = f"{np.mean([r for _, r in played]):.2f}" if played else "-"
            rate = self.num_timesteps / (time.monotonic() - self.started)
            print(
                f"{self.num_timesteps:,}/{self.steps:,} agent steps, {rate:.0f}/s, "
                f"ε {getattr(self.model, 'exploration_rate', 0.0):.2f}, last 20 games {mean}",
                flush=True,
            )
        return self.num_timesteps < self.steps


def games(folder: Path) -> list[tuple[int, float]]:
    """(agent steps at the game's end, raw score) per whole game of the Monitor files in ``folder`` (SB3's
    ``load_results``), placed under the wrapper, whose ``l`` counts emulator frames: steps = frames // 4, which also
    counts the frames a wrapper plays on its own (the no-ops after a lost life here, AtariWrapper's FIRE and no-op
    there) and the repeats a lost life cuts short. The same approximation for both runs, and a similar excess: over
    20,000 random agent steps of Breakout (119 and 101 short games) the finished games' frames // 4 came to 21,967 on
    ``AtariWrapper`` and 21,688 on ``NatureAtariWrapper`` (~10 % more than the agent steps at random play; less as
    games get longer)."""
    results = load_results(str(folder))
    steps = results["l"].cumsum() // 4
    return [(int(n), float(r)) for n, r in zip(steps, results["r"], strict=True)]


def per_bucket(played: list[tuple[int, float]], limit: int) -> dict[int, tuple[float, int]]:
    """Mean score and count of the games that ended in each ``BUCKET`` of agent steps below ``limit``."""
    out: dict[int, tuple[float, int]] = {}
    for lo in range(0, limit, BUCKET):
        scores = [r for s, r in played if lo <= s < lo + BUCKET]
        if scores:
            out[lo] = (float(np.mean(scores)), len(scores))
    return out


def build(
    arm: str, env_id: str, config: dict[str, Any], seed: int, out: Path, changed: dict[str, Any] | None = None
) -> BaseAlgorithm:
    """The arm's agent on the arm's env; every other setting from the RL Zoo's ``config.yml`` (with ``changed``, the
    ``--set`` values, already in it)."""
    gym.register_envs(ale_py)
    if config.get("env_wrapper") not in (ZOO_WRAPPER, [ZOO_WRAPPER]):
        raise SystemExit(f"the reference run's env_wrapper is {config.get('env_wrapper')!r}, not {ZOO_WRAPPER}")
    wrapper = NatureAtariWrapper if arm == "pipeline" else AtariWrapper
    env = make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=wrapper, monitor_dir=str(out))
    env = VecFrameStack(env, n_stack=int(config["frame_stack"]))
    kwargs = {k: v for k, v in config.items() if k not in NOT_MODEL_KEYS}
    kwargs.update(replay_buffer_class=FrameReplayBuffer, optimize_memory_usage=False, seed=seed, verbose=0)
    if arm == "pipeline":
        return DQN(config["policy"], env, **kwargs)
    # the paper's optimizer at the paper's rate (config.yml's 1e-4 is Adam's) unless --set gives one; ε over the same
    # steps as the RL Zoo
    if "learning_rate" not in (changed or {}):
        kwargs.pop("learning_rate")
    return NatureDQN(config["policy"], env, exploration_decay_steps=None, **kwargs)


def overrides(pairs: list[str], config: dict[str, Any]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as hyperparameters (values through ``yaml.safe_load``); each key must be one of
    ``config.yml``'s DQN arguments."""
    changed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in config or key in NOT_MODEL_KEYS:
            known = ", ".join(sorted(k for k in config if k not in NOT_MODEL_KEYS))
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY one of {known}")
        try:
            changed[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise SystemExit(f"--set {pair!r}: the value is not valid YAML ({exc.__class__.__name__})") from None
    return changed


def report(arm: str, env_id: str, ours: Path, reference: Path, steps: int, png: Path, changed: str = "") -> str:
    """The table of both runs' training games per ``BUCKET`` (folders of Monitor files), and their curves in ``png``;
    ``changed`` names the hyperparameters set with ``--set``."""
    here = per_bucket(games(ours), steps)
    zoo = per_bucket(games(reference), steps)
    name = ARMS[arm] + (f", {changed}" if changed else "")
    lines = [
        f"| agent steps | here: {name} | RL Zoo: SB3 DQN on AtariWrapper |",
        "|---|---|---|",
    ]
    for lo in sorted(here):
        z = zoo.get(lo)
        zoo_cell = f"{z[0]:.2f} ({z[1]} games)" if z else "-"
        lines.append(f"| {lo:,}–{lo + BUCKET:,} | {here[lo][0]:.2f} ({here[lo][1]} games) | {zoo_cell} |")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, data in ((f"here: {name}", here), ("RL Zoo: SB3 DQN on AtariWrapper", zoo)):
        xs = sorted(data)
        ax.plot([x + BUCKET / 2 for x in xs], [data[x][0] for x in xs], marker="o", label=label)
    ax.set(
        xlabel="agent steps",
        ylabel=f"training game score (mean per {BUCKET:,} steps)",
        title=f"{env_id}: the RL Zoo's DQN run, one half swapped",
    )
    ax.title.set_fontsize(10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", choices=sorted(ARMS), required=True, help="which half of the RL Zoo's run to swap")
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=500_000, help="agent steps to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the run's files")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="folder of the RL Zoo's runs")
    parser.add_argument("--report-only", action="store_true", help="redraw the table and PNG of a finished run")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change one of config.yml's hyperparameters"
    )
    args = parser.parse_args()
    reference = args.reference / args.env
    try:
        config = read_yaml_mapping(reference / "config.yml")
    except UserError as exc:  # no such file, or not the mapping rl-zoo3 writes
        raise SystemExit(f"{exc} (--reference: the folder of the RL Zoo's runs)") from None
    changed = overrides(args.set, config)
    config.update(changed)
    changed_text = ", ".join(f"{k} {v}" for k, v in changed.items())
    print(
        f"--arm {args.arm}: {ARMS[args.arm]}; {args.env}, seed {args.seed}, {args.steps:,} steps on "
        f"{detect('cpu').describe()}; the rest from {reference / 'config.yml'}"
        + (f" but {changed_text}" if changed else "")
    )
    if args.report_only and not (args.out / "0.monitor.csv").is_file():
        raise SystemExit(f"{args.out} has no 0.monitor.csv: run without --report-only first")
    if not args.report_only:
        args.out.mkdir(parents=True, exist_ok=True)
        model = build(args.arm, args.env, config, args.seed, args.out, changed)
        model.learn(int(config["n_timesteps"]), callback=StopAt(args.steps, args.out))
    print(report(args.arm, args.env, args.out, reference, args.steps, args.out / "games.png", changed_text))


if __name__ == "__main__":
    main()
