"""What a trained agent does in its game: the actions it takes, how long it waits to serve after a lost life, and how
far apart its Q-values are where a life starts (issue 14: an agent that stays at random play's score).

Plays ``--games`` whole games with the paper's evaluation settings (1–30 no-op starts, ε = 0.05, raw score, no
life-loss terminal, 18,000-frame cap; the paper's frames: for agents trained on ``NatureAtariWrapper``) from an
agent (a run folder, its ``best_model.zip`` or a checkpoint's ``model.zip``, loaded without unpickling anything,
:func:`sb3_dqn_atari.loading.load.load_agent`), and prints:

* the score of each game;
* how often each action was taken (an agent that has learned nothing useful often takes one action nearly always);
* for each life, the agent steps until the first FIRE (the ball is served only by FIRE in Breakout; the paper's
  pipeline, unlike SB3's ``AtariWrapper``, does not press it for the agent);
* the mean Q-value of each action over the first states of the lives, and their spread: Q-values that differ by
  less than their noise mean the network has not yet told the actions apart.

    python benchmarks/policy_probe.py logs/dqn/BreakoutNoFrameskip-v4_1/checkpoints/step_000000753096/model.zip \\
        --env BreakoutNoFrameskip-v4 --games 5 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import torch as th

from sb3_dqn_atari.atari.protocols import make_eval_env
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.loading.load import load_agent

EPSILON = 0.05
FIRE = "FIRE"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", type=Path, help="an agent zip or run folder")
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--games", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    gym.register_envs(ale_py)
    try:
        model, _ = load_agent(args.agent, device="cpu", env_id=args.env)
    except UserError as exc:  # not an agent, or one that is refused without unpickling
        raise SystemExit(str(exc)) from None

    # the project's paper-protocol evaluation env (1–30 no-op starts, full games, raw score, 18,000-frame cap), laid
    # out as the model was trained
    env = make_eval_env(
        args.env,
        "nature",
        args.seed,
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        obs_shape=model.observation_space.shape,
    )
    rng = np.random.default_rng(args.seed)
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    names = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    n_actions = len(names)
    obs: Any
    obs, _ = env.reset(seed=args.seed)
    scores: list[float] = []
    counts = np.zeros(n_actions, dtype=int)
    waits: list[int] = []
    starts: list[np.ndarray] = []
    score, lives, waiting, life_started = 0.0, ale.lives(), 0, True
    while len(scores) < args.games:
        with th.no_grad():
            q = model.q_net(th.as_tensor(obs[None], device=model.device).float()).cpu().numpy()[0]  # type: ignore[attr-defined]
        action = int(q.argmax()) if rng.random() >= EPSILON else int(rng.integers(n_actions))
        if life_started:
            starts.append(q)
            life_started, waiting = False, 0
        counts[action] += 1
        if waiting >= 0 and names[action] == FIRE:
            waits.append(waiting)
            waiting = -1
        elif waiting >= 0:
            waiting += 1
        obs, reward, terminated, truncated, _ = env.step(action)
        score += float(reward)
        done = terminated or truncated
        life_started = done or ale.lives() < lives
        if done:
            scores.append(score)
            score = 0.0
            obs, _ = env.reset()
        lives = ale.lives()
    q_starts = np.array(starts)
    print(f"{args.agent}: {args.games} games of {args.env}, ε {EPSILON}, seed {args.seed}")
    print("scores:", ", ".join(f"{s:g}" for s in scores))
    print("actions:", ", ".join(f"{n} {c / counts.sum():.1%}" for n, c in zip(names, counts, strict=True)))
    if FIRE in names:
        print(f"agent steps to the first FIRE of each life: {waits}")
    print(f"Q at the {len(starts)} life starts, mean ± std over them:")
    print(", ".join(f"{n} {m:.3f} ± {s:.3f}" for n, m, s in zip(names, q_starts.mean(0), q_starts.std(0), strict=True)))


if __name__ == "__main__":
    main()
