"""sb3-dqn-atari: DeepMind's 2015 Nature DQN, exactly, as a Stable-Baselines3 / rl-zoo3 plugin.

Public names are imported lazily (PEP 562), so that ``import sb3_dqn_atari.runtime`` (the ONNX player)
never imports torch or stable_baselines3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "NatureDQN": "sb3_dqn_atari.dqn",
    "DeepMindRMSprop": "sb3_dqn_atari.optim",
    "NipsCNN": "sb3_dqn_atari.networks",
    "NatureAtariWrapper": "sb3_dqn_atari.wrappers",
    "FrameReplayBuffer": "sb3_dqn_atari.replay",
    "PrioritizedFrameReplayBuffer": "sb3_dqn_atari.prioritized",
    "DuelingCnnPolicy": "sb3_dqn_atari.dueling",
    "DuelingMlpPolicy": "sb3_dqn_atari.dueling",
}

__all__ = [
    "DeepMindRMSprop",
    "DuelingCnnPolicy",
    "DuelingMlpPolicy",
    "FrameReplayBuffer",
    "NatureAtariWrapper",
    "NatureDQN",
    "NipsCNN",
    "PrioritizedFrameReplayBuffer",
    "__version__",
]

if TYPE_CHECKING:
    from sb3_dqn_atari.dqn import NatureDQN
    from sb3_dqn_atari.dueling import DuelingCnnPolicy, DuelingMlpPolicy
    from sb3_dqn_atari.networks import NipsCNN
    from sb3_dqn_atari.optim import DeepMindRMSprop
    from sb3_dqn_atari.prioritized import PrioritizedFrameReplayBuffer
    from sb3_dqn_atari.replay import FrameReplayBuffer
    from sb3_dqn_atari.wrappers import NatureAtariWrapper


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sb3_dqn_atari' has no attribute {name!r}")
