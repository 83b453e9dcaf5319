"""Evaluate a trained agent with the paper's protocol and report scores people can compare.

::

    python -m sb3_dqn_atari.evaluate MODEL --env BreakoutNoFrameskip-v4 [--protocol nature|machado]
        [--episodes 30] [--seed 0] [--epsilon 0.05] [--video PATH] [-o results.json] [--device auto]

``MODEL`` is an SB3 zip, an rl-zoo3 run folder (``logs/dqn/BreakoutNoFrameskip-v4_1``) or an ``.onnx`` file
written by :mod:`sb3_dqn_atari.export`. The protocols are described in :mod:`sb3_dqn_atari.evaluation`
(Mnih et al. 2015, Methods; Machado et al. 2018). Prints one row per episode and a summary (mean ± std,
median, min/max, the human-normalised score and the paper's DQN score), and writes ``results.json`` with the
keys huggingface_sb3 / rl-zoo3 write (``mean_reward``, ``std_reward``, ``is_deterministic``,
``n_eval_episodes``, ``eval_datetime``) plus the protocol's details and every episode. ``--video`` saves the
first episode's raw RGB screens (every emulator frame, 60 fps) as an MP4.

Ctrl-C stops the evaluation: the episodes done so far are printed and written (``"interrupted": true``).
Mistakes a user can make (a missing path, an unknown env id, a model for another game, an unwritable output)
end with one ``error: ...`` line on stderr, exit code 2, and no output file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.errors import UserError, run_cli
from sb3_dqn_atari.common.files import Mp4Writer, atomic_write_bytes
from sb3_dqn_atari.evaluation import (
    EVAL_EPISODES,
    EVAL_EPSILON,
    EpisodeResult,
    EvalResult,
    ProtocolEnv,
    atari_game,
    evaluate_policy_protocol,
    make_eval_env,
    protocol_settings,
)

#: The emulator runs at 60 Hz; the video shows every frame in real time.
VIDEO_FPS = 60
#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


@dataclass
class Agent:
    """What the evaluation needs from a model, whatever its format."""

    act: Callable[[np.ndarray], Any]
    n_actions: int
    obs_shape: tuple[int, ...]
    env_id: str | None
    source: str
    action_meanings: list[str] | None = None


def _load_onnx(path: Path) -> Agent:
    try:
        from sb3_dqn_atari.onnx.runtime import NATURE_WRAPPER, OnnxAgent, PlayerError
    except ImportError as exc:  # the runtime needs onnxruntime
        raise UserError(f"evaluating an .onnx model needs sb3_dqn_atari.onnx.runtime and onnxruntime ({exc})") from exc
    try:
        agent = OnnxAgent(path)  # checks the file first: no external data, no custom operator domain
        agent.metadata.preprocessing.check_supported()
    except PlayerError as exc:
        raise UserError(str(exc)) from exc
    meta = agent.metadata
    if meta.preprocessing.wrapper != NATURE_WRAPPER:
        raise UserError(f"{path} was exported for {meta.env_id} without Atari preprocessing; nothing to evaluate here")
    return Agent(
        act=agent.predict,
        n_actions=meta.n_actions,
        obs_shape=tuple(meta.observation_shape),
        env_id=meta.env_id,
        source=str(path),
        action_meanings=list(meta.action_meanings),
    )


def load_for_evaluation(
    model: str,
    env_id: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    trust_remote_code: bool = False,
) -> Agent:
    """An :class:`Agent` for an SB3 zip, an rl-zoo3 run folder or an exported ``.onnx`` file.

    SB3 models act greedily (``predict(deterministic=True)``): the protocol adds its own ε. ``threads``: torch's
    intra-op threads (None: unchanged); ONNX models run on one onnxruntime thread.
    """
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise UserError(f"no such file: {path}; pass an SB3 .zip, an rl-zoo3 log folder or an exported .onnx")
        return _load_onnx(path)
    import torch
    from gymnasium import spaces

    from sb3_dqn_atari.loading import load_agent

    if threads is not None:
        torch.set_num_threads(threads)
    sb3_model, source = load_agent(path, device=device, env_id=env_id, trust_remote_code=trust_remote_code)
    if not isinstance(sb3_model.action_space, spaces.Discrete):
        raise UserError(f"{source.zip_path} acts in {sb3_model.action_space}; Atari evaluation needs discrete actions")
    shape = sb3_model.observation_space.shape
    if shape is None:
        raise UserError(f"{source.zip_path} has an observation space without a shape ({sb3_model.observation_space})")

    def act(obs: np.ndarray) -> np.ndarray:
        action, _ = sb3_model.predict(obs, deterministic=True)
        return np.asarray(action)

    return Agent(
        act=act,
        n_actions=int(sb3_model.action_space.n),
        obs_shape=tuple(int(s) for s in shape),
        env_id=source.env_id,
        source=str(source.zip_path),
    )


def _check_output(path: Path | None, what: str) -> None:
    """Fail early (before any episode) when ``path`` cannot be written."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; pass a file name")
    if not parent.is_dir():
        raise UserError(f"cannot write {what} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {what} {path}: permission denied")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def format_report(result: EvalResult) -> str:
    """The per-episode table and the summary, as printed."""
    lines = [f"{'episode':>7}  {'score':>10}  {'steps':>6}  {'frames':>6}  {'no-ops':>6}  end"]
    for i, e in enumerate(result.episodes, 1):
        end = "frame cap" if e.truncated else "game over"
        lines.append(f"{i:>7}  {e.score:>10.1f}  {e.steps:>6}  {e.frames:>6}  {e.noops:>6}  {end}")
    s = result.settings
    start = f"1-{s['noop_max']} no-op starts" if s["noop_max"] else f"sticky actions p={s['repeat_action_probability']}"
    lines.append("")
    lines.append(
        f"{result.env_id}, {result.protocol} protocol ({start}, epsilon={result.epsilon}, "
        f"{s['max_episode_frames']:,}-frame cap, raw score over all lives), seed {result.seed}, "
        f"{len(result.episodes)} episodes{' (interrupted)' if result.interrupted else ''}"
    )
    if not result.episodes:
        lines.append("no episode finished")
        return "\n".join(lines)
    lines.append(
        f"score: {result.mean:.2f} ± {result.std:.2f} (mean ± std), median {result.median:.1f}, "
        f"min {result.min:.1f}, max {result.max:.1f}"
    )
    paper = result.paper
    if paper is None:
        lines.append(f"human-normalised: n/a ({result.game} is not in the paper's table)")
    else:
        lines.append(
            f"human-normalised: {_fmt(result.human_normalized)}%  "
            f"(paper's random {paper.random:g}, human {paper.human:g})"
        )
        lines.append(
            f"paper's DQN (Mnih et al. 2015, Ext. Data Table 2): {paper.dqn:g} ± {paper.dqn_std:g} "
            f"(human-normalised {paper.normalize(paper.dqn):.1f}%)   this agent: {result.mean:.1f}"
        )
    if result.protocol != "nature" and paper is not None:
        lines.append("note: the paper's numbers come from the nature protocol")
    return "\n".join(lines)


def results_json(result: EvalResult, model: str, when: datetime.datetime) -> bytes:
    data: dict[str, Any] = result.to_dict()
    data["eval_datetime"] = when.isoformat()
    data["model"] = model
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.evaluate",
        description="Evaluate a DQN agent with the Nature 2015 (or Machado 2018) evaluation protocol.",
    )
    parser.add_argument("model", help="SB3 .zip, rl-zoo3 run folder (logs/dqn/Env_1) or exported .onnx")
    parser.add_argument("--env", default=None, help="Atari env id (default: the one the model was trained on)")
    parser.add_argument(
        "--protocol",
        choices=["nature", "machado"],
        default="nature",
        help="nature: 1-30 no-op starts (Mnih 2015); machado: sticky actions p=0.25 (Machado 2018)",
    )
    parser.add_argument("--episodes", type=int, default=EVAL_EPISODES, help="episodes (paper: 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=EVAL_EPSILON, help="epsilon-greedy (paper: 0.05)")
    parser.add_argument(
        "--max-frames",
        type=int,
        default=EVAL_MAX_FRAMES,
        help="episode cap in emulator frames (paper: 18000 = 5 min); change it only for quick checks",
    )
    parser.add_argument("--video", type=Path, default=None, help="write the first episode as an MP4")
    parser.add_argument("-o", "--output", type=Path, default=Path("results.json"), help="results JSON")
    parser.add_argument("--device", default="auto", help="torch device for SB3 models (auto, cpu, cuda)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for SB3 models (default 1: fastest for one observation at a time)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="load a zip with SB3's unpickling loader (trusted files)"
    )
    return parser.parse_args(argv)


def _game_or_none(env_id: str) -> str | None:
    try:
        return atari_game(env_id)
    except UserError:
        return None


def run(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        raise UserError("--episodes must be at least 1")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UserError("--epsilon must be within [0, 1]")
    if args.max_frames <= 0:
        raise UserError("--max-frames must be positive")
    _check_output(args.output, "the results file")
    _check_output(args.video, "the video")

    if args.threads < 1:
        raise UserError("--threads must be at least 1")
    agent = load_for_evaluation(args.model, args.env, args.device, args.threads, args.trust_remote_code)
    env_id = args.env or agent.env_id
    env_id = current_env_id(env_id) if env_id else None
    if env_id is None:
        raise UserError(f"no env id recorded with {args.model}; pass --env, e.g. --env BreakoutNoFrameskip-v4")
    env: ProtocolEnv = make_eval_env(
        env_id,
        args.protocol,
        args.seed,
        n_actions=agent.n_actions,
        obs_shape=agent.obs_shape,
        max_episode_frames=args.max_frames,
    )
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    if agent.action_meanings is not None and agent.action_meanings != meanings:
        env.close()
        raise UserError(f"{env_id} has actions {meanings}; the model was exported with {agent.action_meanings}")
    if agent.env_id is not None and env.eval_info.game != _game_or_none(agent.env_id):
        print(f"note: the model was trained on {agent.env_id}, evaluating it on {env_id}", file=sys.stderr)

    video = Mp4Writer(args.video, VIDEO_FPS) if args.video is not None else None
    done: list[EpisodeResult] = []

    def on_episode(index: int, episode: EpisodeResult) -> None:
        done.append(episode)
        if index == 0 and video is not None:
            video.finish()

    interrupted = False
    started = datetime.datetime.now()
    try:
        result = evaluate_policy_protocol(
            agent.act,
            protocol=args.protocol,
            episodes=args.episodes,
            seed=args.seed,
            epsilon=args.epsilon,
            env=env,
            on_episode=on_episode,
            first_episode_frames=video,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        interrupted = True
        info = env.eval_info
        result = EvalResult(
            env_id=info.env_id,
            game=info.game,
            protocol=info.protocol.name,
            epsilon=args.epsilon,
            seed=args.seed,
            settings=protocol_settings(info),
            episodes=list(done),
            interrupted=True,
        )
        print("\ninterrupted: reporting the episodes done so far", file=sys.stderr)
    finally:
        if video is not None:
            video.abort()  # removes the temp file when the first episode did not finish; no-op after finish()
        env.close()

    if result.episodes:  # written before anything is printed: a closed stdout (| head) cannot lose them
        atomic_write_bytes(args.output, results_json(result, agent.source, started))
    print(format_report(result))
    if result.episodes:
        print(f"wrote {args.output}")
        if video is not None and args.video.exists() and done:
            print(f"wrote {args.video}")
    return EXIT_INTERRUPTED if interrupted else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
