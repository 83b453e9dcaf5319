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

import os
from typing import Any

from rl_zoo3 import exp_manager
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_dqn_atari.dqn import NatureDQN
from sb3_dqn_atari.evaluation import NatureEvalCallback
from sb3_dqn_atari.wrappers import NatureAtariWrapper

__all__ = ["NatureAtariWrapper", "NatureDQN", "PaperProtocolEvalCallback", "register"]


class _SaveBestModel(BaseCallback):
    """Saves ``best_model.zip`` when the paper-protocol score improves (what SB3's EvalCallback does)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def _on_step(self) -> bool:
        self.model.save(os.path.join(self.folder, "best_model"))
        return True


class PaperProtocolEvalCallback(NatureEvalCallback):
    """What rl-zoo3's ``--eval-freq`` builds once this module is imported: SB3 ``EvalCallback``'s arguments,
    the paper's evaluation. ``eval_freq`` counts calls as rl-zoo3 passes it (already divided by ``n_envs``)."""

    def __init__(
        self,
        eval_env: VecEnv,
        callback_on_new_best: BaseCallback | None = None,
        n_eval_episodes: int = 5,
        eval_freq: int = 10_000,
        log_path: str | None = None,
        best_model_save_path: str | None = None,
        **_ignored: Any,  # deterministic, render, warn: the protocol fixes ε = 0.05
    ) -> None:
        eval_env.close()  # the training-wrapper env rl-zoo3 built is not the paper's
        self._eval_freq_calls = int(eval_freq)
        saver = _SaveBestModel(best_model_save_path) if best_model_save_path else None
        super().__init__(
            eval_freq=eval_freq, n_eval_episodes=n_eval_episodes, log_path=log_path, callback_on_new_best=saver
        )

    def _init_callback(self) -> None:
        self.eval_freq = self._eval_freq_calls * self.training_env.num_envs
        super()._init_callback()


def register(name: str = "dqn") -> None:
    """Make rl-zoo3's ``--algo name`` build :class:`NatureDQN`, ``--eval-freq`` use the paper's protocol, and
    ``-optimize`` sample around the paper's values and score trials with its protocol
    (:mod:`sb3_dqn_atari.sweep.hpo`), and runs print and record what they train (:mod:`sb3_dqn_atari.zoo_run`),
    in this process."""
    from sb3_dqn_atari import zoo_run
    from sb3_dqn_atari.sweep import hpo

    ALGOS[name] = NatureDQN
    exp_manager.EvalCallback = PaperProtocolEvalCallback  # type: ignore[misc,assignment]
    hpo.register(name)
    zoo_run.install()  # the run's first lines (class, mode, yml, torch threads), config.yml's n_timesteps


register()
