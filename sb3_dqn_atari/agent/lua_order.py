"""The Lua code's order of acting and learning at an update step, on SB3's training loop.

DeepMind's agent (``dqn/NeuralQLearner.lua``, ``perceive``) at agent step ``t``: stores the transition of step
``t - 1``, selects the action ``a_t`` ε-greedily with the current network, *then*, when ``t > learn_start`` and
``t % update_freq == 0``, runs the update, and returns ``a_t`` for the emulator to play. SB3's ``learn`` runs the
update after a rollout and selects ``a_t`` at the start of the next rollout, with the updated network.

:class:`LuaActingOrder` selects ``a_t`` at the end of a rollout that an update follows (``collect_rollouts``,
with the weights before the update), keeps it, and the next rollout's first step plays it (``_sample_action``).
The random draws come in the Lua's order too: the action's (ε draw, tie-break or uniform action) before the
update's minibatch. Everything else is SB3's: ``train`` is the update, run when SB3 runs it; callbacks and
logging are unchanged.

The kept action is training state: it is saved with the model (a list of ints, next to ``_last_obs``), so that a
checkpoint taken between rollouts (``on_rollout_start``) resumes exactly, and a later ``learn`` call goes on in
the same order. It is dropped when the env starts over (``learn(reset_num_timesteps=True)``, a new env).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback, RolloutReturn, TrainFreq
from stable_baselines3.common.vec_env import VecEnv


class LuaActingOrder(OffPolicyAlgorithm):
    """Mixin for SB3's DQN (``class NatureDQN(LuaActingOrder, DQN)``): at an update step the action is selected
    before the update, as in DeepMind's Lua code. For discrete actions."""

    #: the action selected for the next agent step (one per env), before the update that precedes that step
    _next_actions: list[int] | None = None

    def _update_follows(self, rollout: RolloutReturn) -> bool:
        """``learn`` will call ``train`` after this rollout (SB3's condition)."""
        gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else rollout.episode_timesteps
        return rollout.continue_training and self.num_timesteps > self.learning_starts and gradient_steps > 0

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        """SB3's rollout; then, if an update follows, the next step's action, selected with today's weights."""
        rollout = super().collect_rollouts(
            env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
        )
        if self._update_follows(rollout):
            actions, _ = self._sample_action(learning_starts, action_noise, env.num_envs)
            self._next_actions = [int(a) for a in np.asarray(actions).reshape(-1)]
        return rollout

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The kept action if there is one (selected before the update), else SB3's selection."""
        if self._next_actions is not None:
            actions = np.array(self._next_actions, dtype=np.int64)
            self._next_actions = None
            return actions, actions
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if reset_num_timesteps or self._last_obs is None:  # SB3 resets the env: the kept action was for another
            self._next_actions = None
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
