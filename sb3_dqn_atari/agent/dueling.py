"""The dueling network (Wang, Schaul, Hessel, van Hasselt, Lanctot & de Freitas, ICML 2016) as SB3 DQN policies.

Section 4.2 (Atari), and how each point is built here:

=================================================  ==============================================================
Wang et al. 2016                                   here
=================================================  ==============================================================
"the same low-level convolutional structure of     :class:`~sb3_dqn_atari.agent.networks.NatureTorso` (the Nature
DQN"                                               convolutions, 3136 features on 84x84)
value and advantage streams, "both have a fully-   ``net_arch=[512]``: each stream ``Linear(3136, 512)`` → ReLU →
connected layer with 512 units", outputs 1 and     ``Linear(512, 1)`` (value) / ``Linear(512, n_actions)``
``|A|``; "rectifier non-linearities ... between    (advantage)
all adjacent layers"
eq. (9): ``Q = V + (A − mean_a A)``                :meth:`DuelingQNetwork.forward`
"we rescale the combined gradient entering the     ``gradient_scale=1/sqrt(2)``: a backward hook multiplies the sum
last convolutional layer by 1/√2"                  of both streams' gradients at the torso's output (the last conv
                                                   layer's ReLU output) by it; the forward pass is untouched (and
                                                   so is the ONNX export, which traces without gradients)
"we clip the gradients to have their norm less     the algorithm's ``max_grad_norm``; see ``hyperparams/dueling.yml``
than or equal to 10"; learning rate 6.25e-5;       (10 on the Lua code's summed loss is 10/32 on SB3's mean loss)
Double DQN targets                                 and ``NatureDQN(double_q=True)``
=================================================  ==============================================================

Parameter count on 84x84x4 with ``n`` actions: torso 77,984, each stream's hidden layer 3136·512 + 512 = 1,606,144,
value output 513, advantage output 513·n: 3,290,785 + 513·n in all (3,292,837 for Breakout's 4 actions; the Nature
network has 1,684,128 + 513·n).

``DuelingMlpPolicy`` is the same head on SB3's ``FlattenExtractor`` (vector observations; each stream
``net_arch``, default ``[64, 64]`` like SB3's ``MlpPolicy``). As the policies of :mod:`sb3_dqn_atari.agent.policies`,
the greedy action breaks ties at random.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs

from sb3_dqn_atari.agent.networks import NatureTorso
from sb3_dqn_atari.agent.policies import CnnPolicy, MlpPolicy, TieBreakQNetwork

#: Wang et al. 2016, section 4.2: the gradient entering the last convolutional layer is rescaled by 1/√2
GRADIENT_SCALE = 1 / math.sqrt(2)
#: Wang et al. 2016, section 4.2: each stream's fully connected layer
STREAM_UNITS = 512


class DuelingQNetwork(TieBreakQNetwork):
    """``Q(s, a) = V(s) + (A(s, a) − mean_a' A(s, a'))`` (Wang et al. 2016, eq. 9) on a shared features extractor.

    :param net_arch: hidden layers of *each* stream (the Nature dueling network: ``[512]``)
    :param gradient_scale: factor on the gradient the two streams send into the features extractor
    Other parameters: SB3's ``QNetwork``'s.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[torch.nn.Module] = torch.nn.ReLU,
        normalize_images: bool = True,
        gradient_scale: float = GRADIENT_SCALE,
    ) -> None:
        # BasePolicy's constructor, not QNetwork's: that one would build (and draw the initial weights of) a
        # single-stream head we do not use.
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.net_arch = [STREAM_UNITS] if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self.shared_bias = False
        self.gradient_scale = float(gradient_scale)
        n_actions = int(self.action_space.n)
        self.value_stream = torch.nn.Sequential(*create_mlp(features_dim, 1, self.net_arch, activation_fn))
        self.advantage_stream = torch.nn.Sequential(*create_mlp(features_dim, n_actions, self.net_arch, activation_fn))

    def forward(self, obs: PyTorchObs) -> torch.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        if features.requires_grad and self.gradient_scale != 1.0:  # the sum of both streams' gradients, rescaled
            features.register_hook(lambda gradient: gradient * self.gradient_scale)
        value = self.value_stream(features)
        advantage = self.advantage_stream(features)
        return value + (advantage - advantage.mean(dim=1, keepdim=True))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("shared_bias", None)
        return {**data, "gradient_scale": self.gradient_scale}


class _DuelingMixin:
    """``make_q_net`` builds a :class:`DuelingQNetwork`; ``gradient_scale`` is a policy keyword."""

    def __init__(self, *args: Any, gradient_scale: float = GRADIENT_SCALE, **kwargs: Any) -> None:
        if kwargs.pop("shared_bias", None):
            raise ValueError("shared_bias is an option of the single-stream head, not of the dueling one")
        self.gradient_scale = gradient_scale  # read by make_q_net, which DQNPolicy.__init__ calls
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> DuelingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)  # type: ignore[attr-defined]
        return DuelingQNetwork(**net_args, gradient_scale=self.gradient_scale).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.pop("shared_bias", None)
        return {**data, "gradient_scale": self.gradient_scale}


class DuelingCnnPolicy(_DuelingMixin, CnnPolicy):
    """The dueling network of Wang et al. 2016 for images: Nature convolutions, two 512-unit streams.

    ``NatureDQN("sb3_dqn_atari.agent.dueling.DuelingCnnPolicy" ...)``;
    in a yml: ``policy: sb3_dqn_atari.DuelingCnnPolicy``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", NatureTorso)
        if kwargs.get("net_arch") is None:
            kwargs["net_arch"] = [STREAM_UNITS]
        super().__init__(*args, **kwargs)


class DuelingMlpPolicy(_DuelingMixin, MlpPolicy):
    """The dueling head on SB3's ``FlattenExtractor`` (vector observations); each stream ``net_arch``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", FlattenExtractor)
        super().__init__(*args, **kwargs)
