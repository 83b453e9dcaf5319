"""NatureDQN's own update (``_update``): SB3's ``DQN.train`` bit for bit with the switches off (n-step returns
included, which SB3's train also reads), and each switch against a hand computation written here: the Double DQN
target, the importance-weighted loss and the priorities of prioritized replay."""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_dqn_atari import NatureDQN
from tests.fake_envs import RandomWalkEnv, TinyImageEnv

GAMMA = 0.9


def _parameters_after(model: NatureDQN, train: Any, n: int = 3) -> list[torch.Tensor]:
    """Parameters after ``n`` calls of ``train(model, 1, 16)``; the model's state is put back afterwards."""
    policy_state = {k: v.clone() for k, v in model.policy.state_dict().items()}
    optimizer_state = copy.deepcopy(model.policy.optimizer.state_dict())
    np.random.seed(123)  # the replay memories sample with numpy's global generator
    for _ in range(n):
        train(model, 1, 16)
    after = [p.detach().clone() for p in model.policy.parameters()]
    model.policy.load_state_dict(policy_state)
    model.policy.optimizer.load_state_dict(optimizer_state)
    return after


@pytest.mark.parametrize(
    ("image", "n_steps", "max_grad_norm"),
    [(True, 1, math.inf), (True, 3, math.inf), (True, 3, 0.05), (False, 1, 0.05), (False, 3, math.inf)],
)
def test_switches_off_is_sb3_train_bit_for_bit(image: bool, n_steps: int, max_grad_norm: float) -> None:
    """Same model, same samples (same seed), same optimizer state: SB3's ``DQN.train`` and ``NatureDQN._update``
    give identical parameters: images (FrameReplayBuffer, one- and three-step) and vectors (SB3's ReplayBuffer,
    SB3's NStepReplayBuffer), with and without gradient clipping. Double DQN changes them."""
    env: gym.Env = TinyImageEnv() if image else RandomWalkEnv()
    policy_kwargs = {"features_extractor_kwargs": {"features_dim": 32}} if image else {"net_arch": [32]}
    model = NatureDQN(
        "CnnPolicy" if image else "MlpPolicy",
        env,
        buffer_size=500,
        learning_starts=1000,
        n_steps=n_steps,
        gamma=GAMMA,
        max_grad_norm=max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=0,
        device="cpu",
    )
    model.learn(300)  # fill the replay memory, no update yet
    assert model._n_updates == 0 and (model.replay_buffer_kwargs.get("n_steps", 1) == n_steps or not image)
    ours = _parameters_after(model, lambda m, g, b: m._update(g, b))
    sb3 = _parameters_after(model, DQN.train)
    assert all(torch.equal(a, b) for a, b in zip(ours, sb3, strict=True))
    before = [p.detach().clone() for p in model.policy.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(ours, before, strict=True))  # an update happened
    # Double DQN changes the update once the two networks disagree on the greedy action
    with torch.no_grad():
        model.q_net.q_net[-1].bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
        model.q_net_target.q_net[-1].bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
    plain = _parameters_after(model, lambda m, g, b: m._update(g, b))
    model.double_q = True
    double = _parameters_after(model, lambda m, g, b: m._update(g, b))
    assert not all(torch.equal(a, b) for a, b in zip(double, plain, strict=True))


# ------------------------------------------------------------------------------------------ hand computations
class WeightedSamples(NamedTuple):
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor
    discounts: torch.Tensor | None
    weights: torch.Tensor
    indices: np.ndarray


class FixedBatch:
    """A replay buffer that always returns the same minibatch, and records the priorities it is given."""

    def __init__(self, samples: Any) -> None:
        self.samples = samples
        self.updates: list[tuple[np.ndarray, np.ndarray]] = []

    def sample(self, batch_size: int, env: Any = None) -> Any:
        return self.samples

    def update_priorities(self, indices: np.ndarray, td_errors: torch.Tensor) -> None:
        self.updates.append((np.asarray(indices), td_errors.detach().numpy().copy()))


def _sgd_model(double_q: bool) -> NatureDQN:
    model = NatureDQN(
        "MlpPolicy",
        RandomWalkEnv(),
        learning_rate=0.05,
        gamma=GAMMA,
        double_q=double_q,
        policy_kwargs={"net_arch": [16], "optimizer_class": torch.optim.SGD},
        buffer_size=10,
        seed=0,
        device="cpu",
    )
    model._logger = _NullLogger()  # type: ignore[assignment]
    torch.manual_seed(1)
    with torch.no_grad():  # a target network that disagrees with the online one
        for p in model.q_net_target.parameters():
            p.add_(torch.randn_like(p))
    return model


class _NullLogger:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def _batch(size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "observations": torch.as_tensor(rng.normal(size=(size, 4)), dtype=torch.float32),
        "actions": torch.as_tensor(rng.integers(0, 3, (size, 1))),
        "next_observations": torch.as_tensor(rng.normal(size=(size, 4)), dtype=torch.float32),
        "dones": torch.as_tensor(rng.random((size, 1)) < 0.2, dtype=torch.float32),
        "rewards": torch.as_tensor(rng.normal(size=(size, 1)), dtype=torch.float32),
    }


def _hand_targets(model: NatureDQN, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(double target, plain target, whether the two networks' argmaxes differ), one transition at a time."""
    with torch.no_grad():
        online = model.q_net(batch["next_observations"]).numpy().astype(np.float64)
        target = model.q_net_target(batch["next_observations"]).numpy().astype(np.float64)
    double, plain, differ = [], [], []
    for i in range(len(online)):
        r, d = float(batch["rewards"][i, 0]), float(batch["dones"][i, 0])
        chosen = int(np.argmax(online[i]))  # van Hasselt et al. 2016, eq. (4)
        double.append(r + GAMMA * (1 - d) * target[i, chosen])
        plain.append(r + GAMMA * (1 - d) * target[i].max())
        differ.append(chosen != int(np.argmax(target[i])) and d == 0)
    return np.array(double), np.array(plain), np.array(differ)


def _expected_parameters(model: NatureDQN, batch: dict[str, torch.Tensor], y: np.ndarray, weights: Any = None) -> list:
    """One SGD step on mean(w * Huber(Q(s, a) - y)) with the hand target, on a copy of the online network."""
    net = copy.deepcopy(model.q_net)
    q = net(batch["observations"]).gather(1, batch["actions"])
    errors = q - torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1)
    huber = torch.where(errors.abs() < 1, 0.5 * errors**2, errors.abs() - 0.5)
    loss = (huber if weights is None else torch.as_tensor(weights).reshape(-1, 1) * huber).mean()
    loss.backward()
    lr = model.lr_schedule(1.0)
    return [(p - lr * p.grad).detach() for p in net.parameters()]


@pytest.mark.parametrize("double_q", [True, False])
def test_double_dqn_target_is_the_hand_computation(double_q: bool) -> None:
    model = _sgd_model(double_q)
    batch = _batch()
    double, plain, differ = _hand_targets(model, batch)
    assert differ.sum() >= 5  # the two networks disagree on some greedy actions ...
    assert np.abs(double - plain)[differ].min() > 1e-4  # ... and there the targets differ
    np.testing.assert_array_equal(double[~differ & (batch["dones"][:, 0].numpy() == 0)],
                                  plain[~differ & (batch["dones"][:, 0].numpy() == 0)])  # fmt: skip
    expected = _expected_parameters(model, batch, double if double_q else plain)
    model.replay_buffer = FixedBatch(ReplayBufferSamples(**batch))  # type: ignore[assignment]
    model._update(1, 64)
    for got, want in zip(model.q_net.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=2e-6)


def test_prioritized_update_weights_the_loss_and_returns_its_own_td_errors() -> None:
    """Schaul et al. 2016, Algorithm 1: Δ += w_j · δ_j · ∇Q (δ clipped as DQN's: the Huber loss times w_j), and the
    new priorities come from this update's δ_j (before the step, no second forward pass)."""
    model = _sgd_model(double_q=True)
    batch = _batch(seed=1)
    weights = np.random.default_rng(2).uniform(0.1, 1.0, 64).astype(np.float32)
    weights /= weights.max()
    double, _, _ = _hand_targets(model, batch)
    with torch.no_grad():
        q = model.q_net(batch["observations"]).gather(1, batch["actions"]).numpy()[:, 0].astype(np.float64)
    expected = _expected_parameters(model, batch, double, weights)
    indices = np.arange(100, 164)
    buffer = FixedBatch(
        WeightedSamples(**batch, discounts=None, weights=torch.as_tensor(weights).reshape(-1, 1), indices=indices)
    )
    model.replay_buffer = buffer  # type: ignore[assignment]
    forwards = []
    model.q_net.register_forward_hook(lambda *_: forwards.append(1))
    model._update(1, 64)
    for got, want in zip(model.q_net.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=2e-6)
    assert len(buffer.updates) == 1
    given_indices, td_errors = buffer.updates[0]
    np.testing.assert_array_equal(given_indices, indices)
    np.testing.assert_allclose(td_errors[:, 0], double - q, rtol=1e-5, atol=1e-5)
    assert len(forwards) == 2  # online net on s' (Double DQN's choice) and on s: no extra pass for priorities
    # the same batch without weights is a different update (the weights are not ignored)
    unweighted = _expected_parameters(model, batch, double)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(expected, unweighted, strict=True))
