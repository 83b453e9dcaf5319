"""Each improvement still learns CartPole-v1.

The default suite runs each switch for a short budget (8,000-10,000 agent steps, seed 0) and asks for a mean
return of at least 100 over 10 greedy episodes: a random policy scores about 22 and a diverged or frozen network
about 9 (a constant action), while the switches reach 115-255 here. Prioritized replay and n-step returns live in
the frames-once memory, so they see CartPole through a 1x2x2 uint8 image (the four state variables, quantised;
one frame is a Markov state). ``-m slow``: every switch together solves it (mean >= 475), as
``tests/test_learning.py`` asks of the plain agent.

Settings: ``tests/test_learning.py``'s (rl-zoo3's tuned DQN CartPole schedule and network, learning rate 1e-3 for
DeepMind's RMSProp).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv

from sb3_dqn_atari import DuelingCnnPolicy, DuelingMlpPolicy, NatureDQN, PrioritizedFrameReplayBuffer
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from tests.conftest import CARTPOLE_SETTINGS

#: CartPole's termination bounds (x, θ) and typical speeds, mapped to [0, 255]
SCALE = np.array([2.4, 3.0, 0.21, 3.5])


class ImageCartPole(gym.ObservationWrapper):
    """CartPole's state as a 1x2x2 uint8 image, so that it goes through the frames-once replay memory."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Box(0, 255, (1, 2, 2), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        scaled = np.clip(np.asarray(observation) / SCALE, -1, 1)
        return np.round((scaled + 1) * 127.5).astype(np.uint8).reshape(1, 2, 2)


def cartpole(seed: int, image: bool) -> VecEnv:
    return make_vec_env("CartPole-v1", n_envs=1, seed=seed, wrapper_class=ImageCartPole if image else None)


def train(policy: Any, image: bool, steps: int, net_arch: list[int], **switches: Any) -> tuple[NatureDQN, float]:
    policy_kwargs: dict[str, Any] = {"net_arch": net_arch}
    if image:
        policy_kwargs["features_extractor_class"] = FlattenExtractor
    model = NatureDQN(
        policy,
        cartpole(0, image),
        buffer_size=50_000,
        policy_kwargs=policy_kwargs,
        **CARTPOLE_SETTINGS,
        **switches,
    )
    model.learn(steps)
    rewards, _ = evaluate_policy(
        model, cartpole(100, image), n_eval_episodes=10, deterministic=True, return_episode_rewards=True
    )
    return model, float(np.mean(rewards))


def test_double_dqn_learns() -> None:
    _, score = train("MlpPolicy", False, 8_000, [256, 256], double_q=True)
    assert score >= 100, score


def test_dueling_network_learns() -> None:
    model, score = train(DuelingMlpPolicy, False, 8_000, [64, 64])
    assert type(model.policy) is DuelingMlpPolicy
    assert score >= 100, score


def test_prioritized_replay_learns() -> None:
    model, score = train("CnnPolicy", True, 10_000, [256, 256], replay_buffer_class=PrioritizedFrameReplayBuffer)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedFrameReplayBuffer) and buffer.max_priority > 1.0
    assert score >= 100, score


def test_n_step_returns_learn() -> None:
    model, score = train("CnnPolicy", True, 10_000, [256, 256], n_steps=3)
    assert isinstance(model.replay_buffer, FrameReplayBuffer) and model.replay_buffer.n_steps == 3
    assert score >= 100, score


@pytest.mark.slow
def test_all_improvements_together_solve_cartpole() -> None:
    _, score = train(
        DuelingCnnPolicy,
        True,
        50_000,
        [64, 64],
        double_q=True,
        replay_buffer_class=PrioritizedFrameReplayBuffer,
        n_steps=3,
    )
    assert score >= 475, score
