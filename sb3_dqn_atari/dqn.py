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
action repeat              4                   :class:`~sb3_dqn_atari.wrappers.NatureAtariWrapper`
update frequency           4                   ``train_freq``, one ``gradient_steps`` each
learning rate              0.00025             ``learning_rate``, constant
gradient momentum          0.95                :class:`~sb3_dqn_atari.optim.DeepMindRMSprop` ``alpha``
squared gradient momentum  0.95                same ``alpha`` (the Lua code uses one constant)
min squared gradient       0.01                ``min_squared_gradient`` (see the loss scale below)
initial / final ε          1.0 / 0.1           ``exploration_initial_eps`` / ``exploration_final_eps``
final exploration frame    1,000,000           ``exploration_decay_steps``, counted from ``learning_starts``
replay start size          50,000              ``learning_starts``
no-op max                  30                  :class:`~sb3_dqn_atari.wrappers.NatureAtariWrapper`
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
  ``train`` is reused unchanged. ``max_grad_norm`` defaults to infinity: no gradient clipping.
* **Greedy ties** are broken at random (:mod:`sb3_dqn_atari.policies`).

Modes (``mode=``): ``"exact"`` (default) is all of the above in float32. ``"fast"`` may change numerics, each
change named and switchable in ``fast_options`` (defaults in :data:`FAST_OPTIONS`):

* ``bf16_autocast``: the train step under ``torch.autocast(bfloat16)`` (AVX512-BF16/AMX on recent x86 CPUs,
  tensor cores on GPUs); weights, optimizer state and the loss stay float32. Action selection stays float32
  (one observation: casting the weights would cost more than it saves);
* ``compile``: ``torch.compile`` on the online and target networks' forward (slow first steps; off by default).

Overhead removed in both modes (numerics unchanged):

* the optimizer computes ``sqrt(g2 - g^2 + eps)`` into preallocated buffers (:class:`DeepMindRMSprop`);
* with ``max_grad_norm=inf`` (the paper: no clipping), SB3's ``clip_grad_norm_`` call is skipped: it would
  compute every gradient's norm and multiply every gradient by exactly 1.0 (~1 ms per update on the CPU).
  Identical updates while the gradients are finite (a test compares with SB3's ``train``); SB3 turns every
  gradient into NaN once one is infinite, which here stays in the affected parameters only;
* ``keep_freed_memory`` (CPU): :func:`sb3_dqn_atari.allocator.keep_freed_memory`, process-wide.

Known difference from the Lua code: at a step ``t`` with an update, the Lua selects the action for ``t``
*before* the update and SB3 after it, so acting uses weights one update fresher. The sequence of updates
(when, on how many transitions, with which target) is the same.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_dqn_atari.optim import DeepMindRMSprop
from sb3_dqn_atari.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

#: Extended Data Table 1, "min squared gradient" (for DeepMind's summed loss).
MIN_SQUARED_GRADIENT = 0.01
#: Extended Data Table 1, "squared gradient momentum" and "gradient momentum".
RMSPROP_ALPHA = 0.95
#: What ``mode="fast"`` changes, each switchable through ``fast_options``.
FAST_OPTIONS: dict[str, bool] = {"bf16_autocast": True, "compile": False}
MODES = ("exact", "fast")


def _no_parameters(recurse: bool = True) -> Iterator[torch.nn.Parameter]:
    return iter(())


class NatureDQN(DQN):
    """The Nature DQN (Mnih et al. 2015) with SB3's API: ``NatureDQN("CnnPolicy", env).learn(...)``.

    Takes every argument of :class:`stable_baselines3.DQN` (so rl-zoo3 hyperparameters apply); the defaults
    are the paper's. Extra arguments:

    :param exploration_decay_steps: ε decays linearly from ``exploration_initial_eps`` to
        ``exploration_final_eps`` over this many agent steps, starting at ``learning_starts``
        (Table 1: 1,000,000). ``None`` uses SB3's ``exploration_fraction`` of the training budget instead.
    :param min_squared_gradient: DeepMind RMSProp's constant for the *summed* loss (Table 1: 0.01); the
        optimizer gets ``min_squared_gradient / batch_size**2`` because SB3's loss is the batch mean.
        Ignored if ``policy_kwargs["optimizer_kwargs"]["eps"]`` is given.
    :param mode: ``"exact"`` (the paper in float32) or ``"fast"`` (see the module docstring).
    :param fast_options: overrides of :data:`FAST_OPTIONS` for ``mode="fast"``.
    :param channels_last: both networks in channels-last memory format (oneDNN's and cuDNN's preferred conv
        layout). The math stays float32 in either layout; only the summation order inside the conv kernels
        differs. ``None``: on for the CPU (where the train step is faster in it:
        ``benchmarks/train_throughput.py --mode exact,exact-nchw``), and for ``mode="fast"`` on GPUs.
    :param keep_freed_memory: when ``learn`` starts, set glibc's allocator to keep freed memory for reuse
        (:mod:`sb3_dqn_atari.allocator`; process-wide, numerics unchanged). ``None``: on when training on
        the CPU, where page faults on the train step's temporaries cost 15-30 % of it.
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
        exploration_fraction: float = 0.1,
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
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        unknown = set(fast_options or {}) - set(FAST_OPTIONS)
        if unknown:
            raise ValueError(f"unknown fast_options {sorted(unknown)}; known: {sorted(FAST_OPTIONS)}")
        self.mode = mode
        self.fast_options = {**FAST_OPTIONS, **(fast_options or {})}
        self.channels_last = channels_last
        self.keep_freed_memory = keep_freed_memory
        policy_kwargs = dict(policy_kwargs or {})
        policy_kwargs.setdefault("optimizer_class", DeepMindRMSprop)
        if policy_kwargs["optimizer_class"] is DeepMindRMSprop:
            optimizer_kwargs = dict(policy_kwargs.get("optimizer_kwargs") or {})
            optimizer_kwargs.setdefault("alpha", RMSPROP_ALPHA)
            optimizer_kwargs.setdefault("eps", min_squared_gradient / batch_size**2)
            policy_kwargs["optimizer_kwargs"] = optimizer_kwargs
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
            exploration_fraction=exploration_fraction,
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
        if (
            self.replay_buffer_class is None
            and not self.optimize_memory_usage
            and self.n_steps == 1
            and isinstance(self.observation_space, spaces.Box)
            and is_image_space(self.observation_space)
        ):
            from sb3_dqn_atari.replay import FrameReplayBuffer

            self.replay_buffer_class = FrameReplayBuffer
        super()._setup_model()
        self.exploration_rate = self.epsilon_at(self.num_timesteps)
        if self._use_channels_last():
            self.policy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self._fast("compile"):
            for net in (self.q_net, self.q_net_target):
                net.forward = torch.compile(net.forward)  # type: ignore[method-assign]

    def _use_channels_last(self) -> bool:
        choice = getattr(self, "channels_last", None)
        if choice is None:
            return self.device.type == "cpu" or getattr(self, "mode", "exact") == "fast"
        return bool(choice)

    def _fast(self, option: str) -> bool:
        return getattr(self, "mode", "exact") == "fast" and bool(self.fast_options.get(option, False))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._fast("bf16_autocast"):
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _skip_infinite_clip(self) -> Iterator[None]:
        """SB3's ``train`` calls ``clip_grad_norm_(self.policy.parameters(), max_grad_norm)``. With an
        infinite norm it scales every gradient by exactly 1.0; given no parameters it returns at once, so
        ``policy.parameters`` yields none for the duration of the update (the optimizer holds its own)."""
        if not math.isinf(self.max_grad_norm):
            yield
            return
        self.policy.parameters = _no_parameters  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self.policy.parameters

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        """SB3's, after checking that the replay memory this ``learn`` will fill fits in free memory
        (:func:`sb3_dqn_atari.memory.check_replay_memory`: fails now, not when the ring fills)."""
        from sb3_dqn_atari.allocator import keep_freed_memory
        from sb3_dqn_atari.memory import check_replay_memory

        choice = getattr(self, "keep_freed_memory", None)
        if choice or (choice is None and self.device.type == "cpu"):
            keep_freed_memory()
        if self.replay_buffer is not None:
            check_replay_memory(self.replay_buffer, total_timesteps)
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

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
        """SB3's DQN update, then the target copy of every ``target_update_interval`` agent steps crossed.

        A boundary crossed before ``learning_starts`` needs no copy: the network has not changed yet.
        """
        with self._autocast(), self._skip_infinite_clip():
            super().train(gradient_steps, batch_size)
        previous = max(self._last_train_timestep, self.learning_starts)
        if self.num_timesteps // self.target_update_interval > previous // self.target_update_interval:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._last_train_timestep = self.num_timesteps
