"""The rl-zoo3 entry point: importing this module makes ``--algo dqn`` build :class:`NatureDQN`.

rl-zoo3 has no plugin registry: its ``ALGOS`` dict maps ``--algo`` names to classes, and ``train``/``enjoy``
look the class up after reading the hyperparameter file. Our yml files (``hyperparams/dqn.yml``,
``hyperparams/dqn_nips2013.yml``) name their ``env_wrapper`` from this module, and rl-zoo3 imports that
dotted path while it reads the file, before it builds the model. So::

    python -m rl_zoo3.train --algo dqn --env BreakoutNoFrameskip-v4 -conf hyperparams/dqn.yml

trains NatureDQN, and ``python -m rl_zoo3.enjoy --algo dqn`` (which re-reads the saved ``config.yml``) loads
it back as NatureDQN. Nothing changes for a run that does not use our files: importing ``sb3_dqn_atari``
itself does not import this module, and no other rl-zoo3 algorithm is touched.
"""

from __future__ import annotations

from rl_zoo3.utils import ALGOS

from sb3_dqn_atari.dqn import NatureDQN
from sb3_dqn_atari.wrappers import NatureAtariWrapper

__all__ = ["NatureAtariWrapper", "NatureDQN", "register"]


def register(name: str = "dqn") -> None:
    """Make rl-zoo3's ``--algo name`` build :class:`NatureDQN` in this process."""
    ALGOS[name] = NatureDQN


register()
