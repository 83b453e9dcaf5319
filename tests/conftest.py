"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
#: NatureDQN settings that solve CartPole in ~50k steps (the learning tests'; not the paper's Atari values)
CARTPOLE_SETTINGS = {
    "learning_rate": 1e-3,
    "batch_size": 64,
    "learning_starts": 1_000,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_decay_steps": 8_000,
    "exploration_final_eps": 0.04,
    "seed": 0,
    "device": "cpu",
}


@pytest.fixture(autouse=True, scope="session")
def _register_ale() -> None:
    import ale_py

    gym.register_envs(ale_py)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
