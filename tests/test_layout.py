"""Frames go channels-last as bytes: the same values, the same Q-values and updates, bit for bit."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_dqn_atari import NatureDQN
from sb3_dqn_atari.agent.layout import channels_last_frames, convert_observations
from tests.fake_envs import FourFrameEnv


@pytest.mark.parametrize("channels", [2, 4, 12])
def test_channels_last_frames_are_the_same_bytes(channels: int) -> None:
    frames = torch.randint(0, 256, (5, channels, 7, 9), dtype=torch.uint8)
    converted = channels_last_frames(frames)
    assert converted.shape == frames.shape and converted.dtype == torch.uint8
    assert converted.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(converted, frames)
    assert torch.equal(converted, frames.contiguous(memory_format=torch.channels_last))


def _model(seed: int = 0) -> NatureDQN:
    return NatureDQN(
        "CnnPolicy",
        FourFrameEnv(),
        buffer_size=500,
        learning_starts=60,
        batch_size=16,
        replay_buffer_class=ReplayBuffer,  # the frames here are not a VecFrameStack's (FrameReplayBuffer checks)
        channels_last=True,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
        seed=seed,
        device="cpu",
    )


def _without_hooks(model: NatureDQN) -> NatureDQN:
    for net in (model.q_net, model.q_net_target):
        net._forward_pre_hooks.clear()
    return model


def test_q_values_and_training_are_bit_identical_to_the_float_conversion() -> None:
    hooked = _model()
    assert len(hooked.q_net._forward_pre_hooks) == 1  # channels-last models get the hook
    seen: list[torch.Tensor] = []
    first_conv = next(m for m in hooked.q_net.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    obs = torch.randint(0, 256, (32, 4, 36, 36), dtype=torch.uint8)
    with torch.no_grad():
        q_hooked = hooked.q_net(obs)
    assert seen[-1].dtype == torch.float32 and seen[-1].is_contiguous(memory_format=torch.channels_last)
    plain = _without_hooks(_model())
    with torch.no_grad():
        assert torch.equal(q_hooked, plain.q_net(obs))
    # training: build and train one model after the other (each seeds the global RNGs when built)
    hooked = _model()
    hooked.learn(200)
    plain = _without_hooks(_model())
    plain.learn(200)
    assert hooked._n_updates == plain._n_updates > 0
    pairs = zip(hooked.policy.state_dict().values(), plain.policy.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_only_stacked_uint8_frames_are_converted_and_never_while_tracing() -> None:
    net = torch.nn.Identity()
    convert_observations(net)
    frames = torch.randint(0, 256, (2, 4, 6, 6), dtype=torch.uint8)
    assert net(frames).is_contiguous(memory_format=torch.channels_last)
    floats = frames.float()
    assert net(floats) is floats  # already floats: left to the conv
    vectors = torch.zeros(2, 4, dtype=torch.uint8)
    assert net(vectors) is vectors
    model = _model()
    frames = torch.randint(0, 256, (2, 4, 36, 36), dtype=torch.uint8)
    traced = torch.jit.trace(model.q_net, frames)
    assert "permute" not in str(traced.graph) and "copy_" not in str(traced.graph)
    with torch.no_grad():
        assert torch.equal(traced(frames), model.q_net(frames))
    assert not _model_without_channels_last().q_net._forward_pre_hooks


def _model_without_channels_last() -> NatureDQN:
    return NatureDQN(
        "CnnPolicy",
        FourFrameEnv(),
        buffer_size=100,
        channels_last=False,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
        device="cpu",
    )
