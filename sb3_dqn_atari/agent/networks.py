"""The DQN networks as SB3 features extractors.

The 2015 (Nature) network is exactly SB3's :class:`stable_baselines3.common.torch_layers.NatureCNN`
(conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1, linear 512, ReLUs, no padding, PyTorch's default init,
which draws U(±1/sqrt(fan_in)) like Torch7's), followed by the DQN head ``Linear(512, n_actions)``;
``tests/test_networks.py`` proves it, so we reuse it. The 2013 (NIPS / arXiv:1312.5602) network is not
in SB3: :class:`NipsCNN`. The dueling network (Wang et al. 2016) splits after the Nature convolutions:
:class:`NatureTorso` is NatureCNN without its fully connected layer.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

__all__ = ["NatureCNN", "NatureTorso", "NipsCNN"]


def _convolutions(
    space: spaces.Box, normalized_image: bool, name: str, alternative: str, layers: list[torch.nn.Module]
) -> tuple[torch.nn.Sequential, int]:
    """``layers`` then a flatten, as one module, and the number of features it gives on ``space``; a ValueError naming
    ``name`` and the ``alternative`` policy unless ``space`` is a channel-first image space (SB3's check)."""
    assert isinstance(space, spaces.Box)
    if not is_image_space(space, check_channels=False, normalized_image=normalized_image):
        raise ValueError(
            f"{name} needs a channel-first image observation space, got {space}; "
            f"use {alternative} for vector observations"
        )
    cnn = torch.nn.Sequential(*layers, torch.nn.Flatten())
    with torch.no_grad():
        return cnn, int(cnn(torch.as_tensor(space.sample()[None]).float()).shape[1])


class NipsCNN(BaseFeaturesExtractor):
    """Mnih et al. 2013, "Playing Atari with Deep Reinforcement Learning", section 4.1: conv 16 8x8 stride 4
    → ReLU → conv 32 4x4 stride 2 → ReLU → linear 256 → ReLU (the DQN head adds ``Linear(256, n_actions)``).

    On the 84x84 input: 84 → 20 → 9, so the flattened size is 32·9·9 = 2592.

    :param observation_space: channel-first image space (e.g. 4x84x84 uint8)
    :param features_dim: hidden units of the fully connected layer (256)
    :param normalized_image: whether the images are already in [0, 1] (SB3's flag)
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256, normalized_image: bool = False) -> None:
        super().__init__(observation_space, features_dim)
        self.cnn, n_flatten = _convolutions(observation_space, normalized_image, "NipsCNN", "MlpPolicy", [
            torch.nn.Conv2d(observation_space.shape[0], 16, kernel_size=8, stride=4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, kernel_size=4, stride=2),
            torch.nn.ReLU(),
        ])
        self.linear = torch.nn.Sequential(torch.nn.Linear(n_flatten, features_dim), torch.nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


class NatureTorso(BaseFeaturesExtractor):
    """The Nature network's convolutions without its ``Linear(3136, 512)``: conv 32 8x8/4 → ReLU → conv 64 4x4/2 →
    ReLU → conv 64 3x3/1 → ReLU → flatten (3136 features on 84x84), the layers of SB3's ``NatureCNN.cnn``.

    Wang et al. 2016 ("Dueling Network Architectures for Deep Reinforcement Learning", section 4.2): "the same
    low-level convolutional structure of DQN", after which the dueling network splits into its value and
    advantage streams (:class:`sb3_dqn_atari.agent.dueling.DuelingQNetwork`).

    :param observation_space: channel-first image space (e.g. 4x84x84 uint8)
    :param normalized_image: whether the images are already in [0, 1] (SB3's flag)
    """

    def __init__(self, observation_space: spaces.Box, normalized_image: bool = False) -> None:
        cnn, n_flatten = _convolutions(observation_space, normalized_image, "NatureTorso", "DuelingMlpPolicy", [
            torch.nn.Conv2d(observation_space.shape[0], 32, kernel_size=8, stride=4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, kernel_size=4, stride=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, kernel_size=3, stride=1),
            torch.nn.ReLU(),
        ])
        super().__init__(observation_space, n_flatten)
        self.cnn = cnn

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.cnn(observations)
