"""The paper-protocol trial evaluation of rl-zoo3's Optuna search (see :mod:`sb3_dqn_atari.sweep.hpo`)."""

from __future__ import annotations

import math
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

from sb3_dqn_atari.zoo import PaperProtocolEvalCallback


class PaperProtocolTrialEvalCallback(PaperProtocolEvalCallback):
    """rl-zoo3's ``TrialEvalCallback`` (same arguments, same ``trial.report``/pruning and ``is_pruned``,
    ``last_mean_reward``), scoring with the paper's protocol: ε = 0.05, 1-30 no-op starts, raw game score over all
    lives, 18,000-frame cap (:class:`~sb3_dqn_atari.evaluation.NatureEvalCallback`), every ``eval_freq`` calls.
    ``evaluations_nature.npz`` (and ``best_model.zip``) go to rl-zoo3's ``--optimization-log-path``/trial_<n>."""

    def __init__(
        self,
        eval_env: VecEnv,
        trial: Any,
        n_eval_episodes: int = 5,
        eval_freq: int = 10_000,
        deterministic: bool = True,
        verbose: int = 0,
        best_model_save_path: str | None = None,
        log_path: str | None = None,
    ) -> None:
        super().__init__(
            eval_env,
            n_eval_episodes=n_eval_episodes,
            eval_freq=eval_freq,
            log_path=log_path,
            best_model_save_path=best_model_save_path,
        )
        self.verbose = verbose
        self.trial = trial
        self.eval_idx = 0
        self.is_pruned = False
        self.last_mean_reward = -math.inf

    def _on_step(self) -> bool:
        evaluations = len(self.results)
        keep_going = super()._on_step()
        if len(self.results) == evaluations:
            return keep_going
        self.eval_idx += 1
        self.last_mean_reward = self.results[-1].mean
        self.trial.report(self.last_mean_reward, self.eval_idx)
        if self.trial.should_prune():
            self.is_pruned = True
            return False
        return keep_going
