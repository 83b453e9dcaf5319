"""NatureDQN: SB3's DQN configured and minimally overridden to be DeepMind's 2015 agent.

Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518, as the released
Lua code (``dqn/NeuralQLearner.lua``, ``run_gpu``) applied it. Defaults (Extended Data Table 1):

=========================  ==================  ===============================================
hyperparameter             value               where it lives here
=========================  ==================  ===============================================
minibatch size             32                  ``batch_size``
replay memory size         1,000,000           ``buffer_size`` (:class:`FrameReplayBuffer` for images)
agent history length       4                   rl-zoo3 ``frame_stack: 4``
target network update      10,000 agent steps  ``target_update_interval`` (see below)
discount factor            0.99                ``gamma``
action repeat              4                   :class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper`
update frequency           4                   ``train_freq``, one ``gradient_steps`` each
learning rate              0.00025             ``learning_rate``, constant
gradient momentum          0.95                :class:`~sb3_dqn_atari.agent.optim.DeepMindRMSprop` ``alpha``
squared gradient momentum  0.95                same ``alpha`` (the Lua code uses one constant)
min squared gradient       0.01                ``min_squared_gradient`` (see the loss scale below)
initial / final ε          1.0 / 0.1           ``exploration_initial_eps`` / ``exploration_final_eps``
final exploration frame    1,000,000           ``exploration_decay_steps``, counted from ``learning_starts``
replay start size          50,000              ``learning_starts``
no-op max                  30                  :class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper`
=========================  ==================  ===============================================

What is overridden, and why (everything else is SB3's DQN, reused as is):

* **ε schedule** (:meth:`epsilon_at`): the Lua code's ``ep = 0.1 + 0.9 * max(0, 1e6 - max(0, step - 5e4)) / 1e6``,
  counted in agent steps, instead of SB3's fraction of the total budget. The action taken at agent step ``t``
  (0-based) uses ``epsilon_at(t)``.
* **Target network**: the Lua code clones the network when ``numSteps % 10000 == 1`` *after* incrementing,
  i.e. right after the update of step ``t`` with ``t % 10000 == 0``; SB3 copies in ``_on_step``, before that
  step's update. We copy in :meth:`train`, after the update, whenever a multiple of
  ``target_update_interval`` agent steps has been crossed since the previous update. (Table 1 says "every
  10,000 updates"; the code does it every 10,000 agent steps = 2,500 updates. We follow the code.)
* **Updates**: SB3's ``learning_starts=50_000``, ``train_freq=4`` already give the Lua's "update when
  step > 50,000 and step % 4 == 0" with the same number of stored transitions; reused unchanged.
* **Loss scale**: the Lua gradient is the *sum* over the batch of ``clip(δ, -1, 1)·∇Q``; SB3's ``train``
  minimises the *mean* Huber loss (δ = 1), whose gradient is the same divided by ``B``. RMSProp is
  invariant to that scale if its constant is scaled by ``1/B²``: the optimizer gets
  ``eps = min_squared_gradient / batch_size**2`` (dqn_zoo does the same: ``0.01 / 32**2``), and SB3's
  mean-loss update is kept (:meth:`NatureDQN._update`, SB3's ``train`` written out, see below).
  ``max_grad_norm`` defaults to infinity: no gradient clipping.
* **Greedy ties** are broken at random (:mod:`sb3_dqn_atari.agent.policies`).
* **Acting before learning** (:class:`~sb3_dqn_atari.agent.lua_order.LuaActingOrder`): at a step ``t`` with an
  update, the Lua code selects the action for ``t`` *before* that update (``NeuralQLearner:perceive``); SB3
  selects it after. We select it at the end of the rollout that the update follows, with the weights before
  the update, and play it at the next step; the update runs where SB3 runs it (``tests/test_lua_order.py``
  compares with a naive Lua loop).

Modes (``mode=``): ``"exact"`` (default) is all of the above in float32. ``"fast"`` may change numerics, each
change named, chosen for the device by what pays there (:func:`sb3_dqn_atari.agent.hardware.choose_fast_options`;
printed once when ``learn`` starts with ``verbose >= 1``, in :attr:`NatureDQN.fast_choices`) and switchable
in ``fast_options`` (names in :data:`FAST_OPTIONS`):

* ``bf16_autocast``: the train step under ``torch.autocast(bfloat16)``; on only where bf16 is native:
  AVX512-BF16 or AMX on x86 CPUs with oneDNN allowed to use them (``ONEDNN_MAX_CPU_ISA``), bf16 tensor cores
  on GPUs. Elsewhere bf16 is emulated and ~5x slower than float32. Weights, optimizer state and the loss stay
  float32; action selection stays float32 (one observation: casting the weights would cost more than it saves);
* ``channels_last``: the conv layout, where it is faster (exact mode uses the same rule, see ``channels_last``);
* ``compile``: ``torch.compile`` on the online and target networks' forward (slower on the CPU; off).

With bf16 off (an AVX2-only CPU), fast mode runs exact mode's computation, bit for bit: never slower.

Overhead removed in both modes (numerics unchanged):

* the optimizer computes ``sqrt(g2 - g^2 + eps)`` into preallocated buffers (:class:`DeepMindRMSprop`);
* with ``max_grad_norm=inf`` (the paper: no clipping), SB3's ``clip_grad_norm_`` call is skipped: it would
  compute every gradient's norm and multiply every gradient by exactly 1.0 (~1 ms per update on the CPU).
  Identical updates while the gradients are finite (tests compare with SB3's ``train``); SB3 turns every
  gradient into NaN once one is infinite, which here stays in the affected parameters only;
* ``keep_freed_memory`` (CPU): :func:`sb3_dqn_atari.agent.allocator.keep_freed_memory`, process-wide.

The order of acting and learning is the Lua code's (above); the sequence of updates (when, on how many
transitions, with which target) is SB3's, which is the Lua's too. Running the env step concurrently with the
update (possible in this order) does not pay on 2 cores and is not done (``benchmarks/env_update_overlap.py``).

The DQN improvements, each a switch, all off by default (the README's table gives every setting and its
source; ``hyperparams/ddqn.yml``, ``dueling.yml``, ``prioritized.yml``, ``dqn_improved.yml`` the papers' runs):

* **Double DQN** (van Hasselt, Guez & Silver, AAAI 2016), ``double_q=True``: the target is
  ``r + γ·Q_target(s', argmax_a Q_online(s', a))`` (eq. 4) instead of ``r + γ·max_a Q_target(s', a)``.
  The tuned variant's single shared output bias is ``policy_kwargs=dict(shared_bias=True)``.
* **Dueling network** (Wang et al., ICML 2016): ``policy=DuelingCnnPolicy`` (:mod:`sb3_dqn_atari.agent.dueling`).
* **Prioritized replay** (Schaul et al., ICLR 2016): ``replay_buffer_class=PrioritizedFrameReplayBuffer``
  (:mod:`sb3_dqn_atari.agent.prioritized`); the update then weights each transition's Huber loss by its importance
  weight and gives the buffer that update's own TD errors as priorities.
* **n-step returns** (as in Hessel et al. 2018): ``n_steps=n``, on the frames-once memory for images
  (:class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer` receives ``n_steps`` and ``gamma``), SB3's
  ``NStepReplayBuffer`` otherwise; the target uses each sample's ``discounts = γ^m``.

Because the priorities need the TD errors of the update itself, :meth:`train` runs its own update
(:meth:`_update`), SB3's ``DQN.train`` written out; with every switch off it computes bit-identical parameters
(``tests/test_improvements_train.py`` runs both on the same model, samples and optimizer state).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_dqn_atari.agent.episode_log import EpisodeLogMixin
from sb3_dqn_atari.agent.fast_mode import FastMode
from sb3_dqn_atari.agent.hardware import FAST_OPTION_NAMES as FAST_OPTIONS
from sb3_dqn_atari.agent.lua_order import LuaActingOrder
from sb3_dqn_atari.agent.optim import DeepMindRMSprop
from sb3_dqn_atari.agent.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

#: Extended Data Table 1, "min squared gradient" (for DeepMind's summed loss).
MIN_SQUARED_GRADIENT = 0.01
#: Extended Data Table 1, "squared gradient momentum" and "gradient momentum".
RMSPROP_ALPHA = 0.95
MODES = ("exact", "fast")


class NatureDQN(EpisodeLogMixin, FastMode, LuaActingOrder, DQN):
    """The Nature DQN (Mnih et al. 2015) with SB3's API: ``NatureDQN("CnnPolicy", env).learn(...)``.

    Takes every argument of :class:`stable_baselines3.DQN` (so rl-zoo3 hyperparameters apply); the defaults
    are the paper's. Extra arguments:

    :param exploration_decay_steps: ε decays linearly from ``exploration_initial_eps`` to
        ``exploration_final_eps`` over this many agent steps, starting at ``learning_starts``
        (Table 1: 1,000,000). ``None`` uses SB3's ``exploration_fraction`` of the training budget instead
        (default 0.1); an ``exploration_fraction`` given while this is set is ignored, with a warning.
    :param min_squared_gradient: DeepMind RMSProp's constant for the *summed* loss (Table 1: 0.01); the
        optimizer gets ``min_squared_gradient / batch_size**2`` because SB3's loss is the batch mean.
        Ignored if ``policy_kwargs["optimizer_kwargs"]["eps"]`` is given.
    :param mode: ``"exact"`` (the paper in float32) or ``"fast"`` (see the module docstring).
    :param fast_options: ``mode="fast"``'s options set by hand (names in :data:`FAST_OPTIONS`, e.g.
        ``{"bf16_autocast": False}``); the others are chosen for the device (:attr:`fast_choices`).
    :param channels_last: both networks in channels-last memory format (oneDNN's and cuDNN's preferred conv
        layout). The math stays float32 in either layout; only the summation order inside the conv kernels
        differs. ``None``: where it is faster (:func:`sb3_dqn_atari.agent.hardware.channels_last_pays`). In fast
        mode ``fast_options["channels_last"]`` wins over it.
    :param keep_freed_memory: when ``learn`` starts, set glibc's allocator to keep freed memory for reuse
        (:mod:`sb3_dqn_atari.agent.allocator`; process-wide, numerics unchanged). ``None``: on when training on
        the CPU, where page faults on the train step's temporaries cost 15-30 % of it.
    :param double_q: Double DQN targets (van Hasselt et al. 2016): the online network selects the next
        action, the target network evaluates it.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 2.5e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 50_000,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10_000,
        exploration_fraction: float | None = None,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.1,
        max_grad_norm: float = math.inf,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: Any = "auto",
        _init_setup_model: bool = True,
        exploration_decay_steps: int | None = 1_000_000,
        min_squared_gradient: float = MIN_SQUARED_GRADIENT,
        mode: str = "exact",
        fast_options: dict[str, bool] | None = None,
        channels_last: bool | None = None,
        keep_freed_memory: bool | None = None,
        double_q: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        unknown = set(fast_options or {}) - set(FAST_OPTIONS)
        if unknown:
            raise ValueError(f"unknown fast_options {sorted(unknown)}; known: {sorted(FAST_OPTIONS)}")
        self.mode = mode
        #: the user's choices; the rest is chosen for the device when the model is set up
        self.fast_options = {name: bool(value) for name, value in (fast_options or {}).items()}
        self.channels_last = channels_last
        self.keep_freed_memory = keep_freed_memory
        self.double_q = double_q
        policy_kwargs = dict(policy_kwargs or {})
        policy_kwargs.setdefault("optimizer_class", DeepMindRMSprop)
        if policy_kwargs["optimizer_class"] is DeepMindRMSprop:
            optimizer_kwargs = dict(policy_kwargs.get("optimizer_kwargs") or {})
            optimizer_kwargs.setdefault("alpha", RMSPROP_ALPHA)
            optimizer_kwargs.setdefault("eps", min_squared_gradient / batch_size**2)
            policy_kwargs["optimizer_kwargs"] = optimizer_kwargs
        if exploration_fraction is not None and exploration_decay_steps is not None:
            warnings.warn(
                f"exploration_fraction={exploration_fraction} is ignored: ε decays over exploration_decay_steps="
                f"{exploration_decay_steps:,} agent steps (the paper's schedule); pass exploration_decay_steps=None "
                "to decay over a fraction of the training budget instead",
                stacklevel=2,
            )
        self.exploration_decay_steps = exploration_decay_steps
        self.min_squared_gradient = min_squared_gradient
        # num_timesteps at the previous call of train(), for the target-network phase.
        self._last_train_timestep = 0
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=0.1 if exploration_fraction is None else exploration_fraction,  # SB3's default
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        from sb3_dqn_atari.agent.replay import FrameReplayBuffer

        if (
            self.replay_buffer_class is None
            and not self.optimize_memory_usage
            and isinstance(self.observation_space, spaces.Box)
            and is_image_space(self.observation_space)
        ):
            self.replay_buffer_class = FrameReplayBuffer
        frames_once = self.replay_buffer_class is not None and issubclass(self.replay_buffer_class, FrameReplayBuffer)
        if frames_once and self.n_steps > 1:  # n-step returns on the frames-once memory
            self.replay_buffer_kwargs = {"n_steps": self.n_steps, "gamma": self.gamma, **self.replay_buffer_kwargs}
        with warnings.catch_warnings():
            if frames_once:  # SB3 warns that a custom buffer class ignores n_steps; ours got it just above
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored")
            super()._setup_model()
        self.exploration_rate = self.epsilon_at(self.num_timesteps)
        self._setup_fast_mode()

    def _setup_learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> tuple[int, BaseCallback]:
        """SB3's, after checking that the replay memory this ``learn`` will fill fits in free memory
        (:func:`sb3_dqn_atari.agent.memory.check_replay_memory`: fails now, not when the ring fills)."""
        from sb3_dqn_atari.agent.allocator import keep_freed_memory
        from sb3_dqn_atari.agent.memory import check_replay_memory

        choice = getattr(self, "keep_freed_memory", None)
        if choice or (choice is None and self.device.type == "cpu"):
            keep_freed_memory()
        self._show_fast_choices()
        if self.replay_buffer is not None:
            check_replay_memory(self.replay_buffer, total_timesteps)
        result = super()._setup_learn(total_timesteps, *args, **kwargs)
        if getattr(self.replay_buffer, "beta_steps", 0) is None:
            # prioritized replay: β from β0 at learning_starts to 1 at the last step of this budget
            self.replay_buffer.beta_start = self.learning_starts  # type: ignore[union-attr]
            self.replay_buffer.beta_steps = max(self._total_timesteps - self.learning_starts, 1)  # type: ignore[union-attr]
        return result

    def epsilon_at(self, step: int) -> float:
        """ε for the action at agent step ``step`` (0-based), as ``NeuralQLearner:eGreedy`` computes it.

        ``ε = final + (initial − final) · max(0, decay − max(0, step − learning_starts)) / decay``:
        1.0 up to step 50,000, then linear to 0.1 at step 1,050,000, then 0.1.
        """
        if self.exploration_decay_steps is None:
            progress_remaining = 1.0 - step / max(self._total_timesteps, 1)
            return float(self.exploration_schedule(progress_remaining))
        decay = self.exploration_decay_steps
        remaining = max(0, decay - max(0, step - self.learning_starts)) / decay
        return self.exploration_final_eps + (self.exploration_initial_eps - self.exploration_final_eps) * remaining

    def _on_step(self) -> None:
        """After each vectorised env step: the ε of the next action. The target copy is in :meth:`train`."""
        self._n_calls += 1
        self.exploration_rate = self.epsilon_at(self.num_timesteps)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """The DQN update (:meth:`_update`), then the target copy of every ``target_update_interval`` agent steps
        crossed.

        A boundary crossed before ``learning_starts`` needs no copy: the network has not changed yet.
        """
        with self._autocast():
            self._update(gradient_steps, batch_size)
        previous = max(self._last_train_timestep, self.learning_starts)
        if self.num_timesteps // self.target_update_interval > previous // self.target_update_interval:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._last_train_timestep = self.num_timesteps

    def _update(self, gradient_steps: int, batch_size: int) -> None:
        """SB3's ``DQN.train``, written out so that the switches can enter it; read it top to bottom.

        With ``double_q=False`` and a uniform replay buffer (one-step or n-step returns), these are SB3's operations
        in SB3's order: the parameters come out bit-identical (``tests/test_improvements_train.py``), but for the
        clip, skipped when ``max_grad_norm`` is infinite (the module docstring, "Overhead removed").
        """
        assert self.replay_buffer is not None
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # n-step returns: γ^m per sample (m <= n_steps, fewer where the episode ended), else γ
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with torch.no_grad():
                next_q_target = self.q_net_target(replay_data.next_observations)
                if self.double_q:
                    # van Hasselt et al. 2016, eq. (4): the online network picks a', the target network values it
                    next_actions = self.q_net(replay_data.next_observations).argmax(dim=1, keepdim=True)
                    next_q_values = torch.gather(next_q_target, dim=1, index=next_actions)
                else:
                    next_q_values, _ = next_q_target.max(dim=1)
                    next_q_values = next_q_values.reshape(-1, 1)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = self.q_net(replay_data.observations)
            current_q_values = torch.gather(current_q_values, dim=1, index=replay_data.actions.long())

            # Huber loss (δ = 1): Nature's error clipping. Prioritized replay (Schaul et al. 2016, Algorithm 1:
            # Δ += w_j·δ_j·∇Q, δ_j clipped as in DQN): each transition's loss times its importance weight.
            weights = getattr(replay_data, "weights", None)
            if weights is None:
                loss = torch.nn.functional.smooth_l1_loss(current_q_values, target_q_values)
            else:
                elementwise = torch.nn.functional.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
                loss = (weights * elementwise).mean()
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            if not math.isinf(self.max_grad_norm):
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

            if weights is not None:
                # the new priorities are |δ| of this update's own forward pass (no second one)
                td_errors = (target_q_values - current_q_values).detach()
                self.replay_buffer.update_priorities(replay_data.indices, td_errors)  # type: ignore[attr-defined]

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        if hasattr(self.replay_buffer, "current_beta"):
            self.logger.record("train/importance_sampling_exponent", self.replay_buffer.current_beta())
