"""Which DQN variant an agent is, and its papers: one line for model cards and reports.

Read from the agent itself (its switches), not from a file name: ``double_q``, a dueling policy, a prioritized
replay memory, ``n_steps``, the shared output bias of Double DQN (tuned).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (name, citation) of each improvement
DOUBLE = ("Double DQN", "van Hasselt, Guez & Silver 2016, Deep Reinforcement Learning with Double Q-learning")
DUELING = ("dueling network", "Wang et al. 2016, Dueling Network Architectures for Deep Reinforcement Learning")
PRIORITIZED = ("prioritized replay", "Schaul et al. 2016, Prioritized Experience Replay")
N_STEP = ("{n}-step returns", "Hessel et al. 2018, Rainbow: Combining Improvements in Deep Reinforcement Learning")
NATURE = ("Nature DQN", "Mnih et al. 2015, Human-level control through deep reinforcement learning")


def describe(model: Any, hyperparams: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
    """``(variant, papers)``, e.g. ``("Nature DQN + Double DQN + dueling network", [...])``; ``("Nature DQN", [Mnih
    et al. 2015])`` for an agent with no improvement switched on.

    :param hyperparams: the run's rl-zoo3 hyperparameters (``config.yml``), for what a zip loaded without
        unpickling does not carry: its replay memory class (the safe loader sets ``replay_buffer_class=None``).
    """
    from sb3_dqn_atari.agent.dueling import DuelingQNetwork
    from sb3_dqn_atari.agent.prioritized import PrioritizedFrameReplayBuffer

    parts = [NATURE]
    if getattr(model, "double_q", False):
        parts.append(DOUBLE)
    policy = getattr(model, "policy", None)
    if isinstance(getattr(policy, "q_net", None), DuelingQNetwork):
        parts.append(DUELING)
    buffer_class = getattr(model, "replay_buffer_class", None)
    named = str((hyperparams or {}).get("replay_buffer_class") or "")
    if (isinstance(buffer_class, type) and issubclass(buffer_class, PrioritizedFrameReplayBuffer)) or (
        buffer_class is None and PrioritizedFrameReplayBuffer.__name__ in named
    ):
        parts.append(PRIORITIZED)
    n_steps = int(getattr(model, "n_steps", 1) or 1)
    if n_steps > 1:
        parts.append((N_STEP[0].format(n=n_steps), N_STEP[1]))
    name = " + ".join(part[0] for part in parts)
    if getattr(getattr(policy, "q_net", None), "shared_bias", False):
        name += " (shared output bias: Double DQN tuned)"
    return name, [part[1] for part in parts]
