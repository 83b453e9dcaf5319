"""Proportional prioritized experience replay (Schaul, Quan, Antonoglou & Silver, ICLR 2016) on the frames-once
replay memory.

=============================  =========================================  =========================================
setting                        Schaul et al. 2016                         here
=============================  =========================================  =========================================
sampling probability           ``P(i) = p_i^α / Σ_k p_k^α`` (eq. 1)       the same, with a :class:`SumTree` of p^α
priority                       ``p_i = |δ_i| + ε`` (proportional)         ``|δ| + epsilon`` from the update's own TD
                                                                          errors (no second forward pass)
α / β0                         0.6 / 0.4 (proportional; App. B.2)         ``alpha=0.6``, ``beta=0.4``
β schedule                     linear to 1 at the end of learning         linear from ``beta`` at agent step
                               (section 3.4)                              ``beta_start`` to ``beta_final`` over
                                                                          ``beta_steps`` agent steps
new transitions                maximal priority ``max_{i<t} p_i``,        the running maximum of all priorities
                               ``p_1 = 1`` (Algorithm 1)                  given so far, starting at 1
importance weights             ``(N·P(j))^-β / max_i w_i`` (Alg. 1)       the same, maximum over the minibatch
minibatch                      stratified: ``[0, Σp)`` cut in ``k``       the same, with ``np.random`` (SB3's
                               equal ranges, one draw in each (B.2.1)     generator, saved by checkpoints)
=============================  =========================================  =========================================

Choices where the paper leaves room, and why:

* **ε** (the paper gives no value): ``1e-6``, OpenAI Baselines' ``prioritized_replay_eps``. It only keeps a
  transition with a zero TD error sampleable; dqn_zoo instead mixes in uniform sampling with probability 1e-3.
* **δ of the priority** is the TD error itself, not clipped to [-1, 1] as the gradient is (dqn_zoo's
  ``jnp.abs(td_errors)``; the paper's Lua code is not public and its ``p_j ← |δ_j|`` does not say which δ).
* **max_i w_i** is taken over the sampled minibatch, as both of DeepMind's reimplementations do (dqn_zoo's
  ``importance_sampling_weights``, Dopamine's ``loss_weights / max(loss_weights)``); OpenAI Baselines divides by
  the largest weight of the whole memory instead. ``N`` cancels in the ratio.
* **the maximal priority** is the running maximum (dqn_zoo's ``max_seen_priority``, Dopamine's
  ``max_recorded_priority``), not the maximum of the priorities stored right now.
* **β's clock** counts agent steps (transitions added, all envs), as dqn_zoo's schedule over its replay's
  counter; ``NatureDQN`` sets ``beta_start = learning_starts`` and ``beta_steps`` to the rest of ``learn``'s budget
  when ``beta_steps`` is ``None``, i.e. β reaches 1 at the last step (dqn_zoo: from the 50,000-transition replay
  start to the 50M-th agent step).
* **n-step returns**: a transition enters the tree (at the maximal priority of that moment) when its n-step
  return is known, as dqn_zoo's accumulator adds it only then.
* the rank-based variant is not implemented (it needs a sorted priority queue and precomputed strata).

Only valid transitions are sampled, exactly: a transition that cannot be sampled (its window is not complete
yet, or the ring overwrote one of its frames: :meth:`FrameReplayBuffer.valid_mask`) has a leaf of zero, so the
probabilities are over the valid ones, and no redraw is needed.

The algorithm side (``NatureDQN.train``) multiplies each transition's Huber loss by its weight and calls
:meth:`PrioritizedFrameReplayBuffer.update_priorities` with the TD errors of that same update. SB3's own ``DQN``
can use this buffer (its samples are SB3's fields plus ``weights`` and ``indices``), but its ``train`` neither
weights the loss nor reports TD errors: every transition then keeps the priority it entered with (uniform
sampling). Use ``NatureDQN`` (any SB3 DQN setting, e.g. Adam, is one of its arguments) for prioritized replay.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecNormalize

from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from sb3_dqn_atari.agent.sum_tree import SumTree

#: Schaul et al. 2016, Appendix B.2: the proportional variant's α and β0
ALPHA = 0.6
BETA = 0.4
#: the paper gives no ε; OpenAI Baselines' value
EPSILON = 1e-6


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, plus the importance weights and the sampled leaves."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    #: importance-sampling weights ``(B, 1)``, normalised by their maximum
    weights: th.Tensor
    #: sum-tree leaves of the samples (``slot * n_envs + env``), for :meth:`update_priorities`
    indices: np.ndarray


class PrioritizedFrameReplayBuffer(FrameReplayBuffer):
    """:class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer` with proportional prioritized sampling.

    ``NatureDQN(..., replay_buffer_class=PrioritizedFrameReplayBuffer)``; in an rl-zoo3 yml:
    ``replay_buffer_class: "__import__('sb3_dqn_atari').PrioritizedFrameReplayBuffer"``.

    :param alpha: priority exponent α (0: uniform)
    :param beta: importance-sampling exponent β0 at ``beta_start``
    :param beta_final: β after ``beta_steps`` more agent steps
    :param beta_steps: agent steps over which β goes linearly from ``beta`` to ``beta_final``; ``None``:
        ``NatureDQN`` sets it (with ``beta_start``) to the rest of the training budget when ``learn`` starts;
        for SB3's ``DQN`` β then stays ``beta``
    :param beta_start: agent step at which the annealing starts
    :param epsilon: added to ``|δ|`` (must be > 0, so no valid transition gets a zero probability)
    Other parameters (the same positions): :class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer`'s.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *args: Any,
        alpha: float = ALPHA,
        beta: float = BETA,
        beta_final: float = 1.0,
        beta_steps: int | None = None,
        beta_start: int = 0,
        epsilon: float = EPSILON,
        **kwargs: Any,
    ) -> None:
        if alpha < 0 or not 0 <= beta <= 1 or not 0 <= beta_final <= 1:
            raise ValueError(f"need alpha >= 0 and beta, beta_final in [0, 1]; got {alpha}, {beta}, {beta_final}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0 (a zero priority makes a transition unsampleable), got {epsilon}")
        super().__init__(buffer_size, observation_space, action_space, *args, **kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.beta_final = float(beta_final)
        self.beta_steps = beta_steps
        self.beta_start = int(beta_start)
        self.epsilon = float(epsilon)
        #: leaf ``slot * n_envs + env`` holds ``p^α`` of a sampleable transition, 0 otherwise
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0

    # --------------------------------------------------------------------------------------- schedule
    def current_beta(self) -> float:
        """β at the current agent step (``n_adds * n_envs``)."""
        if not self.beta_steps:
            return self.beta
        progress = min(max(self.n_adds * self.n_envs - self.beta_start, 0) / self.beta_steps, 1.0)
        return self.beta + (self.beta_final - self.beta) * progress

    # -------------------------------------------------------------------------------------------- add
    def add(self, *args: Any, **kwargs: Any) -> None:
        """Store the step (FrameReplayBuffer's ``add``), then bring the leaves it affects up to date: the
        written slot loses its old priority; a transition whose n-step return became known enters at the
        maximal priority; once the ring wraps, the oldest slots whose frames were overwritten leave."""
        written = self.pos
        super().add(*args, **kwargs)
        size, n_envs = self.buffer_size, self.n_envs
        recent = (written - np.arange(min(self.n_steps, size))) % size
        slots = np.repeat(recent, n_envs)
        envs = np.tile(np.arange(n_envs), len(recent))
        leaves = slots * n_envs + envs
        before = self.tree.get(leaves)
        values = before.copy()
        values[:n_envs] = 0.0  # the written slot: a new transition
        enters = (values == 0) & self.valid_mask(slots, envs)
        values[enters] = self.max_priority**self.alpha
        changed = values != before
        leaves, values = leaves[changed], values[changed]
        if self.full:
            oldest = (self.pos + np.arange(min(self.n_stack, size))) % size
            old_slots = np.repeat(oldest, n_envs)
            old_envs = np.tile(np.arange(n_envs), len(oldest))
            old_leaves = old_slots * n_envs + old_envs
            lost = (self.tree.get(old_leaves) > 0) & ~self.valid_mask(old_slots, old_envs)
            leaves = np.concatenate([leaves, old_leaves[lost]])
            values = np.concatenate([values, np.zeros(int(lost.sum()))])
        self.tree.set(leaves, values)

    def reset(self) -> None:
        super().reset()
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0

    # ----------------------------------------------------------------------------------------- sample
    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        """A stratified prioritized minibatch with its importance weights (see the module docstring)."""
        total = self.tree.total
        if not total > 0:
            raise ValueError("PrioritizedFrameReplayBuffer.sample: no transition can be sampled yet")
        targets = (np.arange(batch_size) + np.random.random(batch_size)) * (total / batch_size)
        leaves = self.tree.find(np.minimum(targets, np.nextafter(total, 0.0)))
        probabilities = self.tree.get(leaves) / total
        weights = (probabilities * self.n_sampleable()) ** -self.current_beta()
        weights /= weights.max()
        slots, env_indices = np.divmod(leaves, self.n_envs)
        samples = self._samples(slots, env_indices, env)
        return PrioritizedReplayBufferSamples(
            *samples,
            weights=self.to_torch(weights.reshape(-1, 1).astype(np.float32), copy=False),
            indices=leaves,
        )

    def n_sampleable(self) -> int:
        """``N`` of the importance weights: the stored transitions (it cancels in the normalised weights)."""
        return (self.buffer_size if self.full else self.pos) * self.n_envs

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | th.Tensor) -> None:
        """``p = |δ| + ε`` for the sampled ``indices`` (leaves; a leaf sampled twice takes its last TD error).

        A leaf that stopped being sampleable since it was sampled (overwritten or lost frames) stays out.
        """
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().float().cpu().numpy()
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64).reshape(-1)) + self.epsilon
        if not np.isfinite(priorities).all():
            raise ValueError("PrioritizedFrameReplayBuffer.update_priorities: a TD error is not finite")
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
        active = self.tree.get(indices) > 0
        self.tree.set(indices[active], priorities[active] ** self.alpha)

    def priorities(self) -> np.ndarray:
        """``p^α`` of every ``(slot, env)`` as the tree holds it (0: not sampleable)."""
        return self.tree.get(np.arange(self.buffer_size * self.n_envs)).reshape(self.buffer_size, self.n_envs)
