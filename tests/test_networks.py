"""The 2015 and 2013 networks: parameter counts, shapes, and that SB3's NatureCNN is the paper's network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import NatureCNN

from sb3_dqn_atari import NatureDQN, NipsCNN
from sb3_dqn_atari.agent.policies import CnnPolicy, NipsCnnPolicy

OBS = spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = spaces.Discrete(4)


def _policy(cls: type) -> torch.nn.Module:
    return cls(OBS, ACTIONS, lambda _: 2.5e-4).q_net


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_nature_parameter_count_by_hand() -> None:
    # conv 32 8x8x4, conv 64 4x4x32, conv 64 3x3x64, fc 3136->512, fc 512->4 (weights + biases)
    convs = (32 * 8 * 8 * 4 + 32) + (64 * 4 * 4 * 32 + 64) + (64 * 3 * 3 * 64 + 64)
    by_hand = convs + (3136 * 512 + 512) + (512 * 4 + 4)
    assert by_hand == 1_686_180
    assert _n_params(_policy(CnnPolicy)) == 1_686_180


def test_nips_parameter_count_by_hand() -> None:
    by_hand = (16 * 8 * 8 * 4 + 16) + (32 * 4 * 4 * 16 + 32) + (32 * 9 * 9 * 256 + 256) + (256 * 4 + 4)
    assert by_hand == 677_172
    assert _n_params(_policy(NipsCnnPolicy)) == 677_172


@pytest.mark.parametrize("cls, hidden", [(CnnPolicy, 512), (NipsCnnPolicy, 256)])
def test_output_shapes(cls: type, hidden: int) -> None:
    q_net = _policy(cls)
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    assert q_net(obs).shape == (5, 4)
    assert q_net.features_extractor(obs.float() / 255).shape == (5, hidden)


def test_sb3_nature_cnn_layers_are_the_paper() -> None:
    """84 -> 20 -> 9 -> 7, no padding, 7*7*64 = 3136 features into a 512 layer, ReLU after each layer."""
    extractor = NatureCNN(OBS, features_dim=512)
    convs = [m for m in extractor.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (32, (8, 8), (4, 4), (0, 0)),
        (64, (4, 4), (2, 2), (0, 0)),
        (64, (3, 3), (1, 1), (0, 0)),
    ]
    size = 84
    for kernel, stride in [(8, 4), (4, 2), (3, 1)]:
        size = (size - kernel) // stride + 1
    assert size == 7
    linears = [m for m in extractor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(7 * 7 * 64, 512)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in extractor.modules()) == 4


def test_nature_init_is_uniform_inverse_sqrt_fan_in() -> None:
    """Torch7's default init: weights and biases ~ U(±1/sqrt(fan_in)); check bound and the uniform's std."""
    torch.manual_seed(0)
    q_net = _policy(CnnPolicy)
    layers = [m for m in q_net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(layers) == 5
    for layer in layers:
        fan_in = layer.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        for tensor in (layer.weight, layer.bias):
            assert tensor.abs().max().item() <= bound
        weight = layer.weight.detach().flatten()
        # std of U(-b, b) is b/sqrt(3); with >= 2048 samples the estimate is within 5%
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert weight.abs().max().item() > 0.95 * bound


def test_policy_aliases_pick_the_networks() -> None:
    assert NatureDQN.policy_aliases["CnnPolicy"] is CnnPolicy
    assert isinstance(_policy(CnnPolicy).features_extractor, NatureCNN)
    assert isinstance(_policy(NipsCnnPolicy).features_extractor, NipsCNN)
