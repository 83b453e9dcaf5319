"""One NatureDQN update on a fixed batch equals a hand computation of DeepMind's update.

Hand computation (NeuralQLearner.lua ``getQUpdate`` + ``qLearnMinibatch``): δᵢ = rᵢ + γ(1 − termᵢ) maxₐ Q̂(s′ᵢ, a)
− Q(sᵢ, aᵢ), clipped to [−1, 1]; the ascent direction is Σᵢ clip(δᵢ) ∇Q(sᵢ, aᵢ) (summed over the batch), then
RMSProp with g, g2 from zero and 0.01 inside the root. It is computed here from autograd of Q alone (no
Huber loss, no optimizer), in float64.
"""

from __future__ import annotations

import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_dqn_atari import NatureDQN
from tests.fake_envs import RandomWalkEnv

BATCH = 32


class FixedBatchBuffer(ReplayBuffer):
    """Returns the batch the test planted."""

    batch: ReplayBufferSamples

    def sample(self, batch_size: int, env: object = None) -> ReplayBufferSamples:
        assert batch_size == BATCH
        return self.batch


def _batch(gen: torch.Generator) -> ReplayBufferSamples:
    obs = torch.randn(BATCH, 4, generator=gen)
    next_obs = torch.randn(BATCH, 4, generator=gen)
    actions = torch.randint(0, 3, (BATCH, 1), generator=gen)
    # rewards of size up to 5 so that some |δ| exceed 1 and the clipping matters
    rewards = torch.randint(-5, 6, (BATCH, 1), generator=gen).float()
    dones = (torch.rand(BATCH, 1, generator=gen) < 0.3).float()
    return ReplayBufferSamples(obs, actions, next_obs, dones, rewards, None)


def test_one_update_equals_the_summed_clipped_delta_rmsprop_step() -> None:
    torch.manual_seed(0)
    model = NatureDQN(
        "MlpPolicy",
        RandomWalkEnv(),
        buffer_size=10,
        replay_buffer_class=FixedBatchBuffer,
        policy_kwargs={"net_arch": [32]},
        device="cpu",
    )
    gen = torch.Generator().manual_seed(1)
    batch = _batch(gen)
    assert isinstance(model.replay_buffer, FixedBatchBuffer)
    model.replay_buffer.batch = batch
    with torch.no_grad():  # a target network that differs from the online one
        for p in model.q_net_target.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))

    online = [p.detach().double().clone().requires_grad_(True) for p in model.q_net.parameters()]
    target = [p.detach().double() for p in model.q_net_target.parameters()]

    def q(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = params  # Linear(4, 32) -> ReLU -> Linear(32, 3)
        return torch.relu(x.double() @ w1.T + b1) @ w2.T + b2

    q_sa = q(online, batch.observations).gather(1, batch.actions)
    next_max = q(target, batch.next_observations).max(1, keepdim=True)[0]
    y = batch.rewards.double() + 0.99 * (1 - batch.dones.double()) * next_max
    delta = (y - q_sa).detach()
    clipped = delta.clamp(-1, 1)
    assert (delta.abs() > 1).any() and (delta.abs() < 1).any()
    ascent = torch.autograd.grad((clipped * q_sa).sum(), online)
    expected = []
    for w, dw in zip(online, ascent, strict=True):
        g, g2 = 0.05 * dw, 0.05 * dw * dw
        expected.append(w.detach() + 2.5e-4 * dw / torch.sqrt(g2 - g * g + 0.01))

    model.set_logger(configure(None, []))
    model.train(gradient_steps=1, batch_size=BATCH)

    for got, want, before in zip(model.q_net.parameters(), expected, online, strict=True):
        torch.testing.assert_close(got.detach().double(), want, rtol=1e-5, atol=1e-7)
        assert (want - before.detach()).abs().max() > 1e-5  # the step is far larger than the tolerance


def test_no_gradient_clipping_by_default() -> None:
    model = NatureDQN("MlpPolicy", RandomWalkEnv(), buffer_size=10, device="cpu")
    assert model.max_grad_norm == float("inf")
    assert model.policy.optimizer.defaults["eps"] == 0.01 / BATCH**2
