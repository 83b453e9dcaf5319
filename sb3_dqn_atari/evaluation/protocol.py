"""The ε-greedy episode loop of the paper's protocol (:func:`evaluate_policy_protocol`) and its results (see
:mod:`sb3_dqn_atari.evaluation` for the protocols)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sb3_dqn_atari.atari.envs import EpisodeResult
from sb3_dqn_atari.atari.protocols import EvalEnvInfo, ProtocolEnv, make_eval_env
from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.evaluation.scores import PAPER_SCORES, PaperScores, human_normalized_score

#: Methods, "Evaluation procedure": ε-greedy with ε = 0.05.
EVAL_EPSILON = 0.05
#: Methods: "30 times for up to 5 min each".
EVAL_EPISODES = 30

#: An agent's greedy policy: a batch of stacked uint8 observations ``(n, *obs_shape)`` to ``n`` actions.
ActFn = Callable[[np.ndarray], Any]

# --------------------------------------------------------------------------------------------------- results


@dataclass
class EvalResult:
    """Episodes played under one protocol, with their summary statistics and the paper's numbers."""

    env_id: str
    game: str
    protocol: str
    epsilon: float
    seed: int
    settings: dict[str, Any]
    episodes: list[EpisodeResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def scores(self) -> np.ndarray:
        return np.array([e.score for e in self.episodes], dtype=np.float64)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.episodes else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation (``np.std``), as SB3's ``evaluate_policy`` reports ``std_reward``."""
        return float(np.std(self.scores)) if self.episodes else math.nan

    @property
    def median(self) -> float:
        return float(np.median(self.scores)) if self.episodes else math.nan

    @property
    def min(self) -> float:
        return float(np.min(self.scores)) if self.episodes else math.nan

    @property
    def max(self) -> float:
        return float(np.max(self.scores)) if self.episodes else math.nan

    @property
    def paper(self) -> PaperScores | None:
        return PAPER_SCORES.get(self.game)

    @property
    def human_normalized(self) -> float | None:
        """Human-normalised mean score in percent (paper's table), None for games outside it."""
        return human_normalized_score(self.game, self.mean) if self.episodes else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary; the huggingface_sb3 / rl-zoo3 ``results.json`` keys come first."""
        paper = self.paper
        return {
            "mean_reward": self.mean,
            "std_reward": self.std,
            "is_deterministic": self.epsilon == 0.0,
            "n_eval_episodes": len(self.episodes),
            "env_id": self.env_id,
            "game": self.game,
            "protocol": self.protocol,
            "epsilon": self.epsilon,
            "seed": self.seed,
            **self.settings,
            "median_reward": self.median,
            "min_reward": self.min,
            "max_reward": self.max,
            "human_normalized_score": self.human_normalized,
            "paper": None if paper is None else {**asdict(paper), "source": "Mnih et al. 2015, Extended Data Table 2"},
            "interrupted": self.interrupted,
            "episodes": [asdict(e) for e in self.episodes],
        }


def protocol_settings(info: EvalEnvInfo) -> dict[str, Any]:
    """The protocol's details as recorded next to every score."""
    proto = info.protocol
    return {
        "noop_max": proto.noop_max,
        "repeat_action_probability": proto.repeat_action_probability,
        "frame_skip": info.preprocessing.frame_skip,
        "max_episode_frames": info.max_episode_frames,
        "full_action_space": info.full_action_space,
        "n_actions": info.n_actions,
        "terminal_on_life_loss": False,
        "reward": "raw game score, summed over all lives",
        "protocol_description": proto.description,
        "preprocessing": info.preprocessing.family,
        "preprocessing_spec": json.loads(info.preprocessing.to_json()),
    }


# ---------------------------------------------------------------------------------------------- the episodes


def _play_episode(
    act_fn: ActFn, env: ProtocolEnv, epsilon: float, eps_rng: np.random.Generator, seed: int | None, bar: Any
) -> EpisodeResult:
    """One episode, ε-greedy over ``act_fn``: DeepMind's ``eGreedy`` (a uniform action with probability ε)."""
    obs, _ = env.reset(seed=seed)
    noops, started = env.tap.frames, time.perf_counter()
    score, steps, terminated, truncated = 0.0, 0, False, False
    while not (terminated or truncated):
        if epsilon > 0 and eps_rng.random() < epsilon:
            action = int(eps_rng.integers(env.eval_info.n_actions))
        else:
            action = int(np.asarray(act_fn(obs[None])).reshape(-1)[0])  # the batch of one's action
        obs, reward, terminated, truncated, _ = env.step(action)
        score += float(reward)
        steps += 1
        if bar is not None and steps % 500 == 0:
            bar.set_postfix(score=score, frames=env.tap.frames, refresh=True)
    env.tap.sink = None
    return EpisodeResult(
        score=score,
        steps=steps,
        frames=env.tap.frames,
        noops=noops,
        truncated=bool(truncated and not terminated),
        seconds=time.perf_counter() - started,
    )


def greedy(model: Any) -> ActFn:
    """An SB3 model's greedy policy (``predict(deterministic=True)``): the protocol adds its own ε."""
    return lambda obs: np.asarray(model.predict(obs, deterministic=True)[0])


def evaluate_policy_protocol(
    act_fn: ActFn,
    env_id: str | None = None,
    protocol: str = "nature",
    episodes: int = EVAL_EPISODES,
    seed: int = 0,
    epsilon: float = EVAL_EPSILON,
    *,
    env: ProtocolEnv | None = None,
    max_episode_frames: int = EVAL_MAX_FRAMES,
    on_episode: Callable[[int, EpisodeResult], None] | None = None,
    first_episode_frames: Callable[[np.ndarray], None] | None = None,
    progress: bool = False,
    partial_on_interrupt: bool = False,
) -> EvalResult:
    """Play ``episodes`` episodes of the protocol with ε-greedy over ``act_fn`` and score them.

    At each agent step, with probability ``epsilon`` a uniformly random action is taken, otherwise
    ``act_fn(obs[None])`` (the greedy action; call the model deterministically). This is DeepMind's
    ``eGreedy`` (Mnih et al. 2015, Methods) and replaces any exploration of the model's own.

    The emulator and the no-op draws are seeded once, by the first ``reset(seed=seed)``; the ε draws use an
    independent stream spawned from ``seed``. The same seed and policy give the same numbers.

    :param act_fn: maps a batch ``(1, *obs_shape)`` of uint8 observations to its greedy action(s).
    :param env_id: the game (any registered ALE id of it); with ``protocol`` and ``max_episode_frames``, passed to
        :func:`make_eval_env` (the env is closed at the end).
    :param env: an env from :func:`make_eval_env` to use instead (left open; the callback reuses one); the
        env-building arguments are then ignored.
    :param on_episode: called with ``(index, result)`` after each episode (progress, a video finished).
    :param first_episode_frames: receives every raw RGB screen of the first episode (a video).
    :param progress: show a tqdm bar on stderr.
    :param partial_on_interrupt: Ctrl-C (KeyboardInterrupt) ends the episodes: the result holds those done so far,
        ``interrupted`` set. Otherwise it propagates.
    :return: an :class:`EvalResult`; raises what ``act_fn`` raises.
    """
    own_env = env is None
    if env is None:
        if env_id is None:
            raise ValueError("pass env_id or env")
        env = make_eval_env(env_id, protocol, seed, max_episode_frames=max_episode_frames)
    info = env.eval_info
    eps_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    result = EvalResult(
        env_id=info.env_id,
        game=info.game,
        protocol=info.protocol.name,
        epsilon=epsilon,
        seed=seed,
        settings=protocol_settings(info),
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, unit="episode", desc=f"{info.game} ({info.protocol.name})", dynamic_ncols=True)
    try:
        for index in range(episodes):
            env.tap.sink = first_episode_frames if index == 0 else None
            episode = _play_episode(act_fn, env, epsilon, eps_rng, seed if index == 0 else None, bar)
            result.episodes.append(episode)
            if on_episode is not None:
                on_episode(index, episode)
            if bar is not None:
                bar.set_postfix(last=episode.score, mean=result.mean, refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        if not partial_on_interrupt:
            raise
        result.interrupted = True
    finally:
        env.tap.sink = None
        if bar is not None:
            bar.close()
        if own_env:
            env.close()
    return result
