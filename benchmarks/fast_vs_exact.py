"""Does ``mode="fast"`` learn as well as ``mode="exact"``? Train both on the same game and seeds, evaluate both
with the paper's protocol at the same steps, and draw both learning curves in one PNG.

The paper's hyperparameters (``hyperparams/dqn.yml``), with ``learning_starts``, the ε decay and the target
period scaled by ``--scale`` (default 0.1: replay start 5,000, ε 1 → 0.1 over 100,000 steps, target copy every
1,000 steps) so that a short run (a few hundred thousand steps) shows learning; ``--buffer-size`` 200,000. Both
modes get exactly the same settings and seeds. Pong is the usual short-run game.

Each finished run is saved as ``OUTPUT/<mode>_seed<seed>.json``; the plot is drawn from all runs found there.
So the modes can run side by side in two processes, one core each, and be plotted together afterwards (on this
project's 2-core CPU a 300k-step Pong run takes about an hour that way)::

    python benchmarks/fast_vs_exact.py --modes exact --threads 1 &
    python benchmarks/fast_vs_exact.py --modes fast --threads 1 &
    wait; python benchmarks/fast_vs_exact.py --plot-only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack

from sb3_dqn_atari import NatureAtariWrapper, NatureDQN
from sb3_dqn_atari.evaluation import PAPER_SCORES, NatureEvalCallback, atari_game

ROOT = Path(__file__).resolve().parents[1]
NOT_MODEL_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy", "n_envs"}


def paper_params(env_id: str, scale: float, buffer_size: int) -> dict[str, Any]:
    table = yaml.safe_load((ROOT / "hyperparams" / "dqn.yml").read_text())
    params = {k: v for k, v in table.get(env_id, table["atari"]).items() if k not in NOT_MODEL_KEYS}
    for key in ("learning_starts", "exploration_decay_steps", "target_update_interval"):
        params[key] = max(int(params[key] * scale), 1)
    params["buffer_size"] = buffer_size
    return params


def run(env_id: str, mode: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, list[float]]:
    env = VecFrameStack(make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=NatureAtariWrapper), 4)
    params = paper_params(env_id, args.scale, args.buffer_size)
    model = NatureDQN("CnnPolicy", env, mode=mode, seed=seed, device=args.device, **params)
    callback = NatureEvalCallback(
        eval_freq=args.eval_every,
        n_eval_episodes=args.eval_episodes,
        seed=seed,
        log_path=str(out / f"{mode}_seed{seed}"),
        max_episode_frames=args.max_frames,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(args.steps, callback=callback, progress_bar=True)
    elapsed = time.perf_counter() - start
    result = {
        "steps": [float(t) for t in callback.timesteps],
        "scores": [r.mean for r in callback.results],
        "steps_per_second": [args.steps / elapsed],
    }
    (out / f"{mode}_seed{seed}.json").write_text(json.dumps(result, indent=1))
    return result


def saved_runs(out: Path) -> dict[str, list[dict[str, list[float]]]]:
    """Every ``<mode>_seed<seed>.json`` in ``out``, by mode (exact first)."""
    curves: dict[str, list[dict[str, list[float]]]] = {"exact": [], "fast": []}
    for path in sorted(out.glob("*_seed*.json")):
        mode = path.name.split("_seed")[0]
        if mode in curves:
            curves[mode].append(json.loads(path.read_text()))
    return {mode: runs for mode, runs in curves.items() if runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="PongNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--max-frames", type=int, default=18_000, help="frame cap of an evaluation episode")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--scale", type=float, default=0.1, help="factor on learning_starts, ε decay, target period")
    parser.add_argument("--buffer-size", type=int, default=200_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--modes", nargs="+", choices=["exact", "fast"], default=["exact", "fast"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--plot-only", action="store_true", help="only draw the runs saved in --output")
    parser.add_argument("-o", "--output", type=Path, default=Path("fast_vs_exact"))
    args = parser.parse_args()

    import ale_py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gym.register_envs(ale_py)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    for seed in [] if args.plot_only else args.seeds:
        for mode in args.modes:
            print(f"{mode} seed {seed}: {run(args.env, mode, seed, args, args.output)}", flush=True)
    curves = saved_runs(args.output)

    figure, axis = plt.subplots(figsize=(7, 4.5))
    print(f"\n{'mode':6s} {'steps/s':>8s}  paper-protocol score at each evaluation (mean over seeds)")
    for mode, runs in curves.items():
        length = min(len(r["steps"]) for r in runs)
        steps = runs[0]["steps"][:length]
        scores = np.array([r["scores"][:length] for r in runs])
        axis.plot(steps, scores.mean(axis=0), label=f"{mode} ({len(runs)} seed(s))")
        if len(runs) > 1:
            axis.fill_between(steps, scores.min(axis=0), scores.max(axis=0), alpha=0.2)
        speed = np.mean([r["steps_per_second"][0] for r in runs])
        print(f"{mode:6s} {speed:8.1f}  " + " ".join(f"{s:7.2f}" for s in scores.mean(axis=0)))
    paper = PAPER_SCORES.get(atari_game(args.env))
    if paper is not None:  # the paper's random and human scores, so that a flat curve reads as flat
        axis.axhline(paper.random, color="gray", linestyle=":", label=f"random ({paper.random:g}, paper)")
        axis.axhline(paper.human, color="gray", linestyle="--", label=f"human ({paper.human:g}, paper)")
    axis.set_xlabel("agent steps")
    axis.set_ylabel("paper-protocol score")
    axis.set_title(f"{args.env}: NatureDQN fast vs exact")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.output / "fast_vs_exact.png", dpi=100)
    (args.output / "fast_vs_exact.json").write_text(json.dumps(curves, indent=1))
    print(f"wrote {args.output / 'fast_vs_exact.png'} and fast_vs_exact.json")


if __name__ == "__main__":
    main()
