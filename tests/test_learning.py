"""NatureDQN learns: CartPole-v1 solved (mean >= 475 over 20 episodes) in about a minute on 2 cores.

The paper's optimizer and loss with settings scaled to CartPole (rl-zoo3's tuned DQN CartPole values for the
schedule and network; the learning rate re-tuned for DeepMind's RMSProp: 1e-3 instead of Adam's 2.3e-3).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_dqn_atari import DeepMindRMSprop, NatureDQN
from tests.conftest import CARTPOLE_SETTINGS


def test_nature_dqn_solves_cartpole() -> None:
    model = NatureDQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        buffer_size=100_000,
        policy_kwargs={"net_arch": [256, 256]},
        **CARTPOLE_SETTINGS,
    )
    assert isinstance(model.policy.optimizer, DeepMindRMSprop)
    model.learn(50_000)
    rewards, _ = evaluate_policy(
        model, Monitor(gym.make("CartPole-v1")), n_eval_episodes=20, deterministic=True, return_episode_rewards=True
    )
    assert np.mean(rewards) >= 475, rewards
