"""DQN policies whose greedy action breaks ties at random, as DeepMind's ``NeuralQLearner:greedy`` does.

Everything else is SB3's :class:`~stable_baselines3.dqn.policies.DQNPolicy` unchanged: the Q-network is
``features_extractor`` (NatureCNN for ``CnnPolicy``) followed by ``Linear(features_dim, n_actions)``.

``policy_kwargs=dict(shared_bias=True)``: the output layer has one bias shared by all actions (van Hasselt,
Guez & Silver 2016, "Double DQN (tuned)": "a single shared bias for all action values in the top layer of the
network"; dqn_zoo's ``linear_with_shared_bias``). The dueling network is :mod:`sb3_dqn_atari.agent.dueling`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn import policies as sb3_policies


class SharedBiasLinear(torch.nn.Module):
    """``x @ W.T + b`` with one scalar ``b`` for every output (the Double DQN (tuned) output layer).

    Initialised as ``torch.nn.Linear``: weight and bias ``U(±1/sqrt(in_features))``, dqn_zoo's scheme too.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.empty(1))
        torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(±1/sqrt(in_features)), as Linear
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight) + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, shared bias"


class TieBreakQNetwork(sb3_policies.QNetwork):
    """SB3's QNetwork; the greedy action is drawn uniformly among the actions of maximal Q-value.

    ``torch.argmax`` would always pick the first one; the Lua code collects every ``a`` with
    ``Q(s, a) == max`` and picks one with ``torch.random``. With distinct Q-values (almost always
    the case) the result equals ``argmax``.

    :param shared_bias: the output layer is a :class:`SharedBiasLinear` (one bias for all actions)
    """

    def __init__(self, *args: Any, shared_bias: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared_bias = shared_bias
        if shared_bias:
            last = self.q_net[-1]
            assert isinstance(last, torch.nn.Linear)
            self.q_net[-1] = SharedBiasLinear(last.in_features, last.out_features)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "shared_bias": self.shared_bias}

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> torch.Tensor:
        q_values = self(observation)
        best = q_values.max(dim=1, keepdim=True).values
        noise = torch.rand_like(q_values)
        return torch.where(q_values == best, noise, -1.0).argmax(dim=1).reshape(-1)


class _TieBreakMixin:
    """Random tie-breaking, and the ``shared_bias`` policy keyword (see the module docstring)."""

    def __init__(self, *args: Any, shared_bias: bool = False, **kwargs: Any) -> None:
        self.shared_bias = shared_bias  # read by make_q_net, which DQNPolicy.__init__ calls
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> sb3_policies.QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)  # type: ignore[attr-defined]
        return TieBreakQNetwork(**net_args, shared_bias=self.shared_bias).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "shared_bias": self.shared_bias}  # type: ignore[misc]


class MlpPolicy(_TieBreakMixin, sb3_policies.DQNPolicy):
    """SB3's DQN ``MlpPolicy`` with random tie-breaking."""


class CnnPolicy(_TieBreakMixin, sb3_policies.CnnPolicy):
    """SB3's DQN ``CnnPolicy`` (NatureCNN, the 2015 network) with random tie-breaking."""


class MultiInputPolicy(_TieBreakMixin, sb3_policies.MultiInputPolicy):
    """SB3's DQN ``MultiInputPolicy`` with random tie-breaking."""


class NipsCnnPolicy(CnnPolicy):
    """The 2013 network (:class:`~sb3_dqn_atari.agent.networks.NipsCNN`, 256 hidden units) with random tie-breaking.

    A policy class rather than ``policy_kwargs`` so rl-zoo3 yml files can name it by dotted path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from sb3_dqn_atari.agent.networks import NipsCNN

        kwargs.setdefault("features_extractor_class", NipsCNN)
        kwargs.setdefault("features_extractor_kwargs", {"features_dim": 256})
        # SB3 adds two 64-unit layers for any extractor but NatureCNN; the 2013 head is Linear(256, n_actions).
        if kwargs.get("net_arch") is None:
            kwargs["net_arch"] = []
        super().__init__(*args, **kwargs)
