"""What ``push_to_hub`` says about the evaluation: the paper's protocol for Atari games, SB3's ``evaluate_policy``
(greedy) for other envs; ``results.json`` and ``replay.mp4`` in the repo folder."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari.atari.envs import make_env
from sb3_dqn_atari.atari.spec import PreprocessingSpec
from sb3_dqn_atari.common.files import Mp4Writer

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


#: huggingface_sb3 / rl-zoo3 default number of evaluation episodes (the paper used 30: pass --episodes 30).
DEFAULT_EPISODES = 10
#: rl-zoo3's ``-n`` default (agent steps recorded).
DEFAULT_VIDEO_LENGTH = 1000
RESULTS_FILE = "results.json"
VIDEO_FILE = "replay.mp4"


@dataclass
class EvalSummary:
    """What the model card says about the evaluation: ``results.json``'s data (``mean_reward``, ``std_reward``,
    ``n_eval_episodes``, ``protocol``, every episode), and the protocol in words."""

    results: dict[str, Any]
    description: str


@dataclass
class PushOptions:
    """How to evaluate and record the agent."""

    episodes: int = DEFAULT_EPISODES
    protocol: str = "nature"
    seed: int = 0
    epsilon: float | None = None  # None: the protocol's (0.05 for Atari), greedy for other envs
    max_frames: int | None = None  # None: the paper's 18,000-frame cap
    video_length: int = DEFAULT_VIDEO_LENGTH
    progress: bool = True
    trust_remote_code: bool = False  # read the run's rl-zoo3 files with rl-zoo3's own YAML reader, unchecked


# ----------------------------------------------------------------------------------------------- evaluation


def evaluate_atari(
    model: BaseAlgorithm,
    env_id: str,
    folder: Path,
    options: PushOptions,
    model_file: str,
    spec: PreprocessingSpec,
) -> EvalSummary:
    """The paper's protocol (:func:`sb3_dqn_atari.evaluation.evaluate_policy_protocol`) on the frames of the
    model's preprocessing ``spec``; ``replay.mp4`` is the first episode's raw screens."""
    from sb3_dqn_atari.atari.protocols import make_eval_env
    from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
    from sb3_dqn_atari.evaluation.protocol import EVAL_EPSILON, greedy
    from sb3_dqn_atari.evaluation.report import evaluate_to_files

    env = make_eval_env(
        env_id,
        options.protocol,
        options.seed,
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        obs_shape=model.observation_space.shape,
        max_episode_frames=options.max_frames or EVAL_MAX_FRAMES,
        spec=spec,
    )
    result = evaluate_to_files(
        greedy(model),
        env,
        folder / RESULTS_FILE,
        model_file,
        episodes=options.episodes,
        seed=options.seed,
        epsilon=EVAL_EPSILON if options.epsilon is None else options.epsilon,
        video=folder / VIDEO_FILE if options.video_length > 0 else None,
        video_frames=options.video_length * spec.frame_skip + 1,  # emulator frames of the first video_length steps
        progress=options.progress,
    )
    settings = result.settings
    description = (
        f"{result.protocol} protocol: {settings['protocol_description']}, ε = {result.epsilon:g}, "
        f"{settings['max_episode_frames']:,}-frame cap, raw score summed over all lives; frames of "
        f"{settings['preprocessing']}"
    )
    return EvalSummary(result.to_dict(), description)


def evaluate_other(
    model: BaseAlgorithm,
    env_id: str,
    folder: Path,
    options: PushOptions,
    model_file: str,
    env_kwargs: dict[str, Any],
    frame_stack: int,
) -> EvalSummary:
    """Non-Atari envs (no paper protocol): ``options.episodes`` greedy episodes through SB3's ``evaluate_policy``;
    ``replay.mp4`` from ``render()`` of the first one, at most ``options.video_length`` frames."""
    import numpy as np
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering; SDL complains without a display
    venv: VecEnv = make_vec_env(lambda: make_env(env_id, env_kwargs, "rgb_array"), seed=options.seed)  # Monitor'd
    if frame_stack > 1:
        venv = VecFrameStack(venv, frame_stack)
    fps = int(venv.get_attr("metadata")[0].get("render_fps") or 30)
    started = datetime.datetime.now()
    with contextlib.closing(venv), (
        Mp4Writer(folder / VIDEO_FILE, fps) if options.video_length > 0 else contextlib.nullcontext()
    ) as video:  # the video kept only if the block ends without an error

        def record(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
            if video is not None and locals_["episode_counts"][0] == 0 and video.frames < options.video_length:
                frame = venv.env_method("render", indices=[0])[0]
                if frame is not None:
                    video(np.asarray(frame))

        rewards, lengths = evaluate_policy(
            model,
            venv,
            n_eval_episodes=options.episodes,
            deterministic=True,
            return_episode_rewards=True,
            callback=record,
            warn=False,
        )
    scores = np.asarray(rewards, dtype=np.float64).reshape(-1)
    steps = np.asarray(lengths, dtype=np.int64).reshape(-1)
    description = "greedy actions (SB3 evaluate_policy, deterministic=True); the Nature protocol is for Atari games"
    results = {
        "mean_reward": float(scores.mean()),
        "std_reward": float(scores.std()),
        "is_deterministic": True,
        "n_eval_episodes": len(scores),
        "eval_datetime": started.isoformat(),
        "env_id": env_id,
        "protocol": "greedy",
        "protocol_description": description,
        "seed": options.seed,
        "episodes": [{"score": float(r), "steps": int(n)} for r, n in zip(scores, steps, strict=True)],
        "model": model_file,
    }
    (folder / RESULTS_FILE).write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return EvalSummary(results, description)
