"""sb3-dqn-atari: DeepMind's 2015 Nature DQN, exactly, as a Stable-Baselines3 / rl-zoo3 plugin.

Public names are imported lazily (PEP 562), so that ``import sb3_dqn_atari.onnx.runtime`` (the ONNX player)
never imports torch or stable_baselines3. The module names of the flat package before the layers
(``sb3_dqn_atari.policies``, ``sb3_dqn_atari.replay``, ...) stay importable for the pickles and files that name
them (:mod:`sb3_dqn_atari._legacy`).

The layers, bottom to top; a module imports only from layers below its own (``tests/test_layers.py``)::

    common                           errors, files, safe YAML, allow-lists (torch-free)
    agent, atari                     NatureDQN and its parts; the paper's preprocessing and envs
    loading, evaluation, checkpoint  agents read from disk; the paper's protocol; exact checkpoints
    onnx                             export and the torch-free runtime
    hub                              push to and pull from the Hugging Face Hub
    zoo, sweep, report, commands     rl-zoo3 hook; python -m sb3_dqn_atari.<verb> (arguments only)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari import _legacy

_legacy.install()
__version__ = "0.1.0"

_EXPORTS = {
    "NatureDQN": "sb3_dqn_atari.agent.dqn",
    "DeepMindRMSprop": "sb3_dqn_atari.agent.optim",
    "NipsCNN": "sb3_dqn_atari.agent.networks",
    "NatureAtariWrapper": "sb3_dqn_atari.atari.wrappers",
    "FrameReplayBuffer": "sb3_dqn_atari.agent.replay",
    "PrioritizedFrameReplayBuffer": "sb3_dqn_atari.agent.prioritized",
    "DuelingCnnPolicy": "sb3_dqn_atari.agent.dueling",
    "DuelingMlpPolicy": "sb3_dqn_atari.agent.dueling",
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
    from sb3_dqn_atari.agent.dqn import NatureDQN
    from sb3_dqn_atari.agent.dueling import DuelingCnnPolicy, DuelingMlpPolicy
    from sb3_dqn_atari.agent.networks import NipsCNN
    from sb3_dqn_atari.agent.optim import DeepMindRMSprop
    from sb3_dqn_atari.agent.prioritized import PrioritizedFrameReplayBuffer
    from sb3_dqn_atari.agent.replay import FrameReplayBuffer
    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sb3_dqn_atari' has no attribute {name!r}")
