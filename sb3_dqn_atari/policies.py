"""DQN policies whose greedy action breaks ties at random, as DeepMind's ``NeuralQLearner:greedy`` does.

Everything else is SB3's :class:`~stable_baselines3.dqn.policies.DQNPolicy` unchanged: the Q-network is
``features_extractor`` (NatureCNN for ``CnnPolicy``) followed by ``Linear(features_dim, n_actions)``.
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn import policies as sb3_policies


class TieBreakQNetwork(sb3_policies.QNetwork):
    """SB3's QNetwork; the greedy action is drawn uniformly among the actions of maximal Q-value.

    ``torch.argmax`` would always pick the first one; the Lua code collects every ``a`` with
    ``Q(s, a) == max`` and picks one with ``torch.random``. With distinct Q-values (almost always
    the case) the result equals ``argmax``.
    """

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> torch.Tensor:
        q_values = self(observation)
        best = q_values.max(dim=1, keepdim=True).values
        noise = torch.rand_like(q_values)
        return torch.where(q_values == best, noise, -1.0).argmax(dim=1).reshape(-1)


class _TieBreakMixin:
    def make_q_net(self) -> sb3_policies.QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)  # type: ignore[attr-defined]
        return TieBreakQNetwork(**net_args).to(self.device)  # type: ignore[attr-defined]


class MlpPolicy(_TieBreakMixin, sb3_policies.DQNPolicy):
    """SB3's DQN ``MlpPolicy`` with random tie-breaking."""


class CnnPolicy(_TieBreakMixin, sb3_policies.CnnPolicy):
    """SB3's DQN ``CnnPolicy`` (NatureCNN, the 2015 network) with random tie-breaking."""


class MultiInputPolicy(_TieBreakMixin, sb3_policies.MultiInputPolicy):
    """SB3's DQN ``MultiInputPolicy`` with random tie-breaking."""


class NipsCnnPolicy(CnnPolicy):
    """The 2013 network (:class:`~sb3_dqn_atari.networks.NipsCNN`, 256 hidden units) with random tie-breaking.

    A policy class rather than ``policy_kwargs`` so rl-zoo3 yml files can name it by dotted path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from sb3_dqn_atari.networks import NipsCNN

        kwargs.setdefault("features_extractor_class", NipsCNN)
        kwargs.setdefault("features_extractor_kwargs", {"features_dim": 256})
        # SB3 adds two 64-unit layers for any extractor but NatureCNN; the 2013 head is Linear(256, n_actions).
        if kwargs.get("net_arch") is None:
            kwargs["net_arch"] = []
        super().__init__(*args, **kwargs)
