"""The rl-zoo3 entry point: importing this module makes ``--algo dqn`` build :class:`NatureDQN`, and makes
``--eval-freq`` evaluate with the paper's protocol.

rl-zoo3 has no plugin registry: its ``ALGOS`` dict maps ``--algo`` names to classes, and ``train``/``enjoy``
look the class up after reading the hyperparameter file. Our yml files (``hyperparams/dqn.yml``,
``hyperparams/dqn_nips2013.yml``) name their ``env_wrapper`` from this module, and rl-zoo3 imports that
dotted path while it reads the file, before it builds the model or its callbacks. So::

    python -m rl_zoo3.train --algo dqn --env BreakoutNoFrameskip-v4 -conf hyperparams/dqn.yml

trains NatureDQN, and ``python -m rl_zoo3.enjoy --algo dqn`` (which re-reads the saved ``config.yml``) loads
it back as NatureDQN. Nothing changes for a run that does not use our files: importing ``sb3_dqn_atari``
itself does not import this module, and no other rl-zoo3 algorithm is touched.

rl-zoo3's ``--eval-freq N --eval-episodes K`` builds SB3's ``EvalCallback`` on an env with the *training*
wrapper (clipped rewards, a lost life ends the episode), whose scores are not the paper's. In a process
that imported this module it builds :class:`PaperProtocolEvalCallback` instead: the paper's protocol
(:mod:`sb3_dqn_atari.evaluation`), ``eval/paper_score`` in the logs, ``evaluations_nature.npz`` and
``best_model.zip`` in the run folder.
"""

from __future__ import annotations

from rl_zoo3 import exp_manager
from rl_zoo3.utils import ALGOS

from sb3_dqn_atari.agent.dqn import NatureDQN
from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
from sb3_dqn_atari.evaluation.callback import PaperProtocolEvalCallback
from sb3_dqn_atari.evaluation.callback import _SaveBestModel as _SaveBestModel  # checkpoints name it here

__all__ = ["NatureAtariWrapper", "NatureDQN", "PaperProtocolEvalCallback", "register"]


def register(name: str = "dqn") -> None:
    """Make rl-zoo3's ``--algo name`` build :class:`NatureDQN`, ``--eval-freq`` use the paper's protocol, and
    ``-optimize`` sample around the paper's values and score trials with its protocol
    (:mod:`sb3_dqn_atari.zoo.hpo`), and runs print and record what they train (:mod:`sb3_dqn_atari.zoo.run`),
    in this process."""
    from sb3_dqn_atari.zoo import hpo, run

    ALGOS[name] = NatureDQN
    exp_manager.EvalCallback = PaperProtocolEvalCallback  # type: ignore[misc,assignment]
    hpo.register(name)
    run.install()  # the run's first lines (class, mode, yml, torch threads), config.yml's n_timesteps


register()
