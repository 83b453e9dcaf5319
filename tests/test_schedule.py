"""ε schedule, update steps and target-copy steps against the Lua code's rules (NeuralQLearner.lua).

The Lua agent at call ``n`` (0-based agent step): acts with ``ep(n)``, updates when ``n > 50000 and
n % 4 == 0``, then increments ``numSteps`` and clones the target when ``numSteps % 10000 == 1``, i.e.
right after the update of a step with ``n % 10000 == 0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sb3_dqn_atari import NatureDQN
from tests.fake_envs import RandomWalkEnv


@pytest.mark.parametrize(
    "step, expected",
    [(0, 1.0), (49_999, 1.0), (50_000, 1.0), (550_000, 0.55), (1_050_000, 0.1), (10_000_000, 0.1), (300_000, 0.775)],
)
def test_epsilon_at_paper_steps(step: int, expected: float) -> None:
    model = NatureDQN("MlpPolicy", RandomWalkEnv(), buffer_size=10, device="cpu")
    assert model.epsilon_at(step) == pytest.approx(expected, abs=1e-12)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class RecordingNatureDQN(NatureDQN):
    """Records when updates and target copies happen, and the ε each greedy-or-random choice used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.update_steps: list[int] = []
        self.copy_steps: list[int] = []
        self.copy_is_post_update: list[bool] = []
        self.epsilons: dict[int, float] = {}

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        target_before = _params(self.q_net_target)
        super().train(gradient_steps, batch_size)
        self.update_steps.append(self.num_timesteps)
        target_after = _params(self.q_net_target)
        if not _same(target_before, target_after):
            self.copy_steps.append(self.num_timesteps)
            self.copy_is_post_update.append(_same(target_after, _params(self.q_net)))

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False):
        self.epsilons[self.num_timesteps] = self.exploration_rate
        return super().predict(observation, state, episode_start, deterministic)


def test_updates_and_target_copies_at_the_lua_steps() -> None:
    total = 70_001
    model = RecordingNatureDQN(
        "MlpPolicy",
        RandomWalkEnv(),
        buffer_size=20_000,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
    )
    model.learn(total)
    # Lua: updates at n > 50000 with n % 4 == 0 (n transitions stored), for every n the run reached
    reached = model.num_timesteps  # SB3 finishes the last 4-step rollout
    assert total <= reached < total + 4
    expected_updates = [n for n in range(reached + 1) if n > 50_000 and n % 4 == 0]
    assert model.update_steps == expected_updates
    # Lua: target cloned right after the update of n % 10000 == 0 (clones before 50,000 copy unchanged weights)
    assert model.copy_steps == [60_000, 70_000]
    assert model.copy_is_post_update == [True, True]
    # the action at step t (0-based) used epsilon_at(t) = the Lua's ep(numSteps = t)
    for step in (50_000, 50_001, 61_234, 70_000):
        lua_ep = 0.1 + 0.9 * max(0, 1_000_000 - max(0, step - 50_000)) / 1_000_000
        assert model.epsilons[step] == pytest.approx(lua_ep, abs=1e-12)
    assert min(model.epsilons) == 50_000  # before learning_starts SB3 samples uniformly without predict()


def test_learning_starts_and_random_warmup() -> None:
    """No update before 50,000; the first 50,000 actions are uniform (SB3's warm-up = ε 1 in the Lua)."""
    model = RecordingNatureDQN("MlpPolicy", RandomWalkEnv(), buffer_size=3_000, policy_kwargs={"net_arch": [8]}, seed=1)
    model.learn(2_000)
    assert model.update_steps == []
    assert model.replay_buffer is not None
    actions = model.replay_buffer.actions[: model.replay_buffer.size()].ravel().astype(int)
    counts = np.bincount(actions, minlength=3)
    # uniform over 3 actions: each count ~ Binomial(2000, 1/3), sd ~ 21: a 5-sd band
    assert counts.sum() == 2_000 and all(560 <= c <= 775 for c in counts)


def test_exploration_fraction_beside_decay_steps_says_which_wins() -> None:
    """``exploration_fraction`` is SB3's; NatureDQN's ``exploration_decay_steps`` (the paper's) wins, and says so
    (issue 18, item 4); with ``exploration_decay_steps=None`` the fraction applies, silently."""
    import warnings

    ignored = r"exploration_fraction=0.25 is ignored: ε decays over exploration_decay_steps=400"
    with pytest.warns(UserWarning, match=ignored):
        model = NatureDQN("MlpPolicy", RandomWalkEnv(), exploration_fraction=0.25, exploration_decay_steps=400,
                          learning_starts=0, device="cpu")  # fmt: skip
    assert model.epsilon_at(200) == pytest.approx(1.0 - 0.9 * 200 / 400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_fraction = NatureDQN("MlpPolicy", RandomWalkEnv(), exploration_fraction=0.25, exploration_decay_steps=None,
                                device="cpu")  # fmt: skip
        NatureDQN("MlpPolicy", RandomWalkEnv(), device="cpu")
    assert by_fraction.exploration_fraction == 0.25
