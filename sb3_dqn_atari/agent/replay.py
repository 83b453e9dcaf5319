"""A replay memory that stores each frame once: the paper's 1,000,000 transitions in ~7.1 GB.

Sources: Mnih et al. 2015 (Methods, "replay memory": the last 1,000,000 transitions); DeepMind's
``dqn/TransitionTable.lua`` (one 84×84 frame per step, the 4-frame state rebuilt at sample time, no frame
of an earlier episode in a state); Dopamine's ``circular_replay_buffer.py`` (the same layout as a ring,
indices next to the write cursor never sampled). SB3's ``ReplayBuffer`` stores stacked ``obs`` and
``next_obs`` (56 GB for 1M Atari transitions, 28 GB with ``optimize_memory_usage``); this one stores
7,056 bytes of frame per transition and returns exactly what SB3's ``ReplayBuffer`` (with
``handle_timeout_termination=True``) would return for the same stored transition.

Layout, per environment ``e`` (SB3's ring: ``buffer_size // n_envs`` slots shared by the ``n_envs``)::

    frames[p, e]         newest frame of next_obs of transition p (its terminal frame when it ended)
    episode_steps[p, e]  transitions of the same episode before p, capped at n_stack
    start_serials[p, e]  where the first state of p's episode lives in the start store
    start_lengths[p, e]  how many of that state's frames are stored (1 for VecFrameStack's zero padding)
    actions, rewards, dones, timeouts   as SB3 stores them

The first state of an episode (``VecFrameStack``'s reset stack: zeros, then the reset frame) is not a
``next_obs`` of any transition of the episode, so its frames go to a small ring of their own (the start
store), after dropping the leading all-zero frames. It grows (by a quarter) when a start still referenced
by the main ring would be overwritten, so it holds about one frame per episode in the window (~0.2 GB for
1M Breakout transitions with life-loss terminals, episodes of ~35 steps). An episode's frame sequence is thus::

    [zeros..., start frames..., frames[p0], frames[p0 + 1], ...]      (p0: the episode's first slot)

and the state of its t-th transition is the window of ``n_stack`` frames ending at position
``n_stack - 1 + t``; ``next_obs`` is the window one further. ``add`` checks that every ``obs`` continues
the previous ``next_obs`` (or starts an episode) and that ``next_obs`` is ``obs`` shifted by one frame, so
the rebuilt stacks are exact by construction rather than by assumption.

When the ring is full, the oldest ``n_stack`` slots of an env can hold transitions whose earlier
frames were overwritten; those are never sampled (as Dopamine's invalid range). ``sample`` draws its
indices with the same ``np.random`` calls as SB3's ``ReplayBuffer.sample`` and redraws only such invalid
ones, so with the same seed it picks the same transitions as SB3 until the ring wraps.

**n-step returns** (``n_steps > 1``; Sutton 1988, as Hessel et al. 2018 ("Rainbow", eq. 2) use them for DQN): the
transition at slot ``p`` is sampled as ``R = sum_{j<m} gamma^j r_{p+j}``, ``next_obs`` = the ``next_obs`` of slot
``p + m - 1``, ``discounts = gamma^m`` and ``dones`` = that last transition's termination, where ``m <= n`` stops at
the first episode end of the window (a terminal, a life loss: NatureAtariWrapper makes it a terminal, or a
time-limit truncation, after which the target bootstraps from the truncated state as SB3 does; or the restart of
the env by a new ``learn()``, stored without a ``done``, where the return is cut and bootstraps). Nothing more is
stored: the rewards and flags of the next ``n - 1`` slots are read at sample time, as SB3's ``NStepReplayBuffer``
does (which needs SB3's 56 GB stacked buffer). Unlike SB3's, a transition is sampled only once its n-step return is
known (``n - 1`` later steps stored, or its episode ended): SB3 cuts the newest transitions' windows at the write
cursor and bootstraps from a state whose episode goes on, with ``gamma^m``; here, as in dqn_zoo's
``NStepTransitionAccumulator`` and Dopamine (which never samples the ``update_horizon`` newest indices), every
sampled return is a full n-step one or ends with its episode.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_dqn_atari.agent.frame_windows import FrameWindows, put, stack_layout
from sb3_dqn_atari.agent.memory import available_memory, slot_nbytes

#: initial capacity (frames) of the start store; it grows on demand
_START_CAPACITY = 1024
#: owner of a start-store entry never written
_DEAD = np.iinfo(np.int64).min // 2


class FrameReplayBuffer(FrameWindows, ReplayBuffer):
    """SB3 ``ReplayBuffer`` for frame-stacked, channel-first ``uint8`` images storing each frame once.

    Use it as ``DQN(..., replay_buffer_class=FrameReplayBuffer)`` (the default of ``NatureDQN``).
    Observations must be ``(n_stack * channels, H, W)`` uint8 stacks as ``VecFrameStack`` (then
    ``VecTransposeImage``) produces them; for any other observation space use SB3's ``ReplayBuffer``.

    :param buffer_size: max number of transitions, over all envs (SB3's meaning: ``buffer_size // n_envs`` each)
    :param observation_space: a channel-first uint8 ``Box`` of shape ``(n_stack * channels, H, W)``
    :param action_space: action space
    :param device: PyTorch device of the sampled tensors
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: ignored (frames are always stored once); accepted because SB3 passes it
    :param handle_timeout_termination: as SB3: a time-limit truncation (``info["TimeLimit.truncated"]``)
        is not a terminal for the target
    :param n_stack: frames per stacked observation; default: every channel is one frame (grayscale Atari)
    :param frames_on_device: keep the frames as a torch tensor on ``device`` (e.g. CUDA, ~7 GB for 1M
        Atari transitions), so that ``sample`` gathers there and copies no observation from the host (only
        the ~1 kB of indices). On the CPU it works but samples slower than the numpy default.
    :param n_steps: n of the n-step returns (1: one-step transitions, exactly SB3's samples; see the module
        docstring). ``NatureDQN(n_steps=n)`` passes its ``n_steps`` and ``gamma`` here.
    :param gamma: discount of the n-step returns (the algorithm's ``gamma``)
    """

    #: arrays indexed ``[slot, env]``; pickling keeps only their filled part
    _SLOT_ARRAYS: ClassVar[tuple[str, ...]] = (
        "frames",
        "actions",
        "rewards",
        "dones",
        "timeouts",
        "episode_steps",
        "start_serials",
        "start_lengths",
    )

    frames: np.ndarray | th.Tensor
    start_frames: np.ndarray | th.Tensor

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_stack: int | None = None,
        frames_on_device: bool = False,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        self.n_stack, self.frame_channels = stack_layout(observation_space, n_stack)
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"FrameReplayBuffer: n_steps must be a whole number >= 1, got {n_steps}")
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)
        # BaseBuffer's __init__ only: ReplayBuffer's would allocate the stacked obs/next_obs arrays.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        if optimize_memory_usage:
            warnings.warn(
                "FrameReplayBuffer always stores each frame once; optimize_memory_usage=True is ignored "
                "(with it, SB3 also marks the last stored transition terminal at each learn()): pass False",
                stacklevel=2,
            )
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.frames_on_device = frames_on_device
        self.frame_shape: tuple[int, ...] = (self.frame_channels, *self.obs_shape[1:])

        slots = (self.buffer_size, self.n_envs)
        # np.zeros / torch.empty map pages lazily: memory becomes resident as the ring fills.
        self.frames = self._new_frames((*slots, *self.frame_shape))
        self.actions = np.zeros((*slots, self.action_dim), dtype=self._maybe_cast_dtype(action_space.dtype))
        self.rewards = np.zeros(slots, dtype=np.float32)
        self.dones = np.zeros(slots, dtype=np.float32)
        self.timeouts = np.zeros(slots, dtype=np.float32)
        self.episode_steps = np.zeros(slots, dtype=np.int32)
        self.start_serials = np.zeros(slots, dtype=np.int64)
        self.start_lengths = np.zeros(slots, dtype=np.int32)

        self.start_frames = self._new_frames((_START_CAPACITY, *self.frame_shape))
        #: number of the add() call that wrote each start-store entry (an entry dies with its slot)
        self.start_owners = np.full(_START_CAPACITY, _DEAD, dtype=np.int64)
        self.n_starts = 0  # serial of the next start-store entry
        self.n_adds = 0  # add() calls so far
        self._last_next_obs: np.ndarray | None = None

        # SB3's warning, on the host memory of the full ring (agent/memory.py's count: frames on a GPU are not in it)
        needed, available = slot_nbytes(self)[0] * self.buffer_size, available_memory()
        if needed > available:
            warnings.warn(
                f"This system does not have apparently enough memory to store the complete replay buffer "
                f"{needed / 1e9:.2f}GB > {available / 1e9:.2f}GB",
                stacklevel=2,
            )

    # ----------------------------------------------------------------------------------------- storage
    def _new_frames(self, shape: tuple[int, ...]) -> np.ndarray | th.Tensor:
        if not self.frames_on_device:
            return np.zeros(shape, dtype=np.uint8)
        if self.device.type == "cpu":
            return th.from_numpy(np.zeros(shape, dtype=np.uint8))
        return th.empty(shape, dtype=th.uint8, device=self.device)

    def _move_frames(self) -> None:
        """Follow ``self.device`` (``load_replay_buffer`` sets it after unpickling)."""
        if isinstance(self.frames, th.Tensor) and self.frames.device != self.device:
            self.frames = self.frames.to(self.device)
            assert isinstance(self.start_frames, th.Tensor)
            self.start_frames = self.start_frames.to(self.device)

    def _store_start(self, frames: np.ndarray) -> int:
        """Append an episode's first-state frames to the start store; return the serial of the first."""
        length = len(frames)
        first = self.n_starts
        # Entries die when the ring overwrites the slot of the add() that wrote them (FIFO), so the newest
        # entry the new ones would overwrite tells whether the store is big enough.
        while True:
            capacity = len(self.start_owners)
            victim = first + length - 1 - capacity
            if length <= capacity and (
                victim < 0 or self.start_owners[victim % capacity] <= self.n_adds - self.buffer_size
            ):
                break
            self._grow_starts(capacity + max(capacity // 4, length))  # +25%: little slack once resident
        capacity = len(self.start_owners)
        where = np.arange(first, first + length) % capacity
        put(self.start_frames, where, frames)
        self.start_owners[where] = self.n_adds
        self.n_starts += length
        return first

    def _grow_starts(self, capacity: int) -> None:
        old_capacity = len(self.start_owners)
        serials = np.arange(max(0, self.n_starts - old_capacity), self.n_starts)
        frames = self._new_frames((capacity, *self.frame_shape))
        owners = np.full(capacity, _DEAD, dtype=np.int64)
        put(frames, serials % capacity, self.start_frames[serials % old_capacity])
        owners[serials % capacity] = self.start_owners[serials % old_capacity]
        self.start_frames, self.start_owners = frames, owners

    # --------------------------------------------------------------------------------------------- add
    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one step of the ``n_envs`` envs (SB3's contract; ``next_obs`` is the terminal observation
        where ``done``, as ``OffPolicyAlgorithm._store_transition`` passes it)."""
        shape = (self.n_envs, *self.obs_shape)
        obs = np.asarray(obs, dtype=np.uint8).reshape(shape)
        next_obs = np.asarray(next_obs, dtype=np.uint8).reshape(shape)
        k, c = self.n_stack, self.frame_channels
        if k > 1 and not np.array_equal(next_obs[:, :-c], obs[:, c:]):
            bad = [e for e in range(self.n_envs) if not np.array_equal(next_obs[e, :-c], obs[e, c:])]
            raise ValueError(
                f"FrameReplayBuffer: next_obs of env(s) {bad} is not obs shifted by one {c}-channel frame, "
                f"as VecFrameStack(n_stack={k}) makes it; check n_stack, or use SB3's ReplayBuffer"
            )
        self._move_frames()
        pos, prev = self.pos, (self.pos - 1) % self.buffer_size
        for e in range(self.n_envs):
            last = self._last_next_obs
            if last is not None and self.dones[prev, e] == 0 and np.array_equal(obs[e], last[e]):
                steps, serial, length = (
                    self.episode_steps[prev, e] + 1,
                    self.start_serials[prev, e],
                    self.start_lengths[prev, e],
                )
                self.episode_steps[pos, e] = min(steps, k)
                self.start_serials[pos, e], self.start_lengths[pos, e] = serial, length
            else:  # first state of an episode: keep its frames after the leading all-zero ones
                stack = obs[e].reshape(k, -1)
                nonzero = stack[:-1].any(axis=1)
                n_zero = int(np.argmax(nonzero)) if nonzero.any() else k - 1
                self.episode_steps[pos, e] = 0
                self.start_lengths[pos, e] = k - n_zero
                self.start_serials[pos, e] = self._store_start(obs[e, n_zero * c :].reshape(-1, *self.frame_shape))
        put(self.frames, pos, next_obs[:, -c:])
        self.actions[pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[pos] = np.asarray(reward)
        self.dones[pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[pos] = [info.get("TimeLimit.truncated", False) for info in infos]
        if self._last_next_obs is None:
            self._last_next_obs = next_obs.copy()
        else:
            self._last_next_obs[...] = next_obs
        self.n_adds += 1
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def reset(self) -> None:
        super().reset()
        self.n_adds = 0
        self.n_starts = 0
        self.start_owners[:] = _DEAD
        self._last_next_obs = None

    # ------------------------------------------------------------------------------------------ sample
    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """Uniform over the stored transitions, with SB3's draws; redraws the (rare) invalid ones."""
        upper_bound = self.buffer_size if self.full else self.pos
        if upper_bound == 0:
            raise ValueError("FrameReplayBuffer.sample: the buffer is empty")
        batch_inds = np.random.randint(0, upper_bound, size=batch_size)
        env_indices = np.random.randint(0, high=self.n_envs, size=(batch_size,))
        # Only the n_stack oldest slots (from pos on, once the ring is full) and, for n-step returns, the
        # n_steps - 1 newest can hold invalid transitions.
        suspicious = self.full & ((batch_inds - self.pos) % self.buffer_size < self.n_stack)
        if self.n_steps > 1:
            suspicious |= (self.pos - 1 - batch_inds) % self.buffer_size < self.n_steps - 1
        if suspicious.any():
            bad = ~self.valid_mask(batch_inds, env_indices)
            if bad.any() and not self._has_valid(upper_bound):
                what = "no n-step return is complete yet" if self.n_steps > 1 else "buffer too small"
                raise ValueError(f"FrameReplayBuffer.sample: no transition has all its frames ({what})")
            while bad.any():
                n = int(bad.sum())
                batch_inds[bad] = np.random.randint(0, upper_bound, size=n)
                env_indices[bad] = np.random.randint(0, high=self.n_envs, size=n)
                bad = ~self.valid_mask(batch_inds, env_indices)
        return self._samples(batch_inds, env_indices, env)

    def _get_samples(
        self,
        batch_inds: np.ndarray,
        env: VecNormalize | None = None,
        env_indices: np.ndarray | None = None,
    ) -> ReplayBufferSamples:
        """The transitions at ``(batch_inds, env_indices)`` (env drawn as SB3 does when not given);
        ``IndexError`` for one that is not stored or lost frames (see :meth:`valid_mask`)."""
        batch_inds = np.asarray(batch_inds)
        if env_indices is None:
            env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        env_indices = np.asarray(env_indices)
        if not self.valid_mask(batch_inds, env_indices).all():
            raise IndexError("FrameReplayBuffer: some requested transitions are not stored or lost frames")
        return self._samples(batch_inds, env_indices, env)

    def _samples(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        self._move_frames()
        if self.n_steps == 1:
            obs, next_obs = self._gather_stacks(batch_inds, env_indices)
            dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
            rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
            discounts = None
        else:
            last, rewards, discounts = self._n_step_returns(batch_inds, env_indices, env)
            obs, next_obs = self._gather_stacks(batch_inds, env_indices, next_inds=last)
            dones = self.dones[last, env_indices] * (1 - self.timeouts[last, env_indices])
        # fancy indexing made fresh arrays: no copy needed to keep them from changing with the buffer
        return ReplayBufferSamples(
            observations=self._obs_to_torch(obs, env),
            actions=self.to_torch(self.actions[batch_inds, env_indices, :], copy=False),
            next_observations=self._obs_to_torch(next_obs, env),
            dones=self.to_torch(dones.reshape(-1, 1), copy=False),
            rewards=self.to_torch(rewards, copy=False),
            discounts=None if discounts is None else self.to_torch(discounts, copy=False),
        )

    def _obs_to_torch(self, obs: np.ndarray | th.Tensor, env: VecNormalize | None) -> th.Tensor:
        if isinstance(obs, th.Tensor):
            if env is None or not getattr(env, "norm_obs", True):
                return obs.to(self.device)
            obs = obs.cpu().numpy()
        normalized = self._normalize_obs(obs, env)
        assert isinstance(normalized, np.ndarray)
        return th.as_tensor(normalized, device=self.device)  # a fresh array: no copy needed on the CPU

    # -------------------------------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Only the filled part of the ring and the live start-store entries (a near-empty 1M buffer
        pickles small); ``__setstate__`` re-allocates the full arrays."""
        state = self.__dict__.copy()
        filled = self.buffer_size if self.full else self.pos
        for name in self._SLOT_ARRAYS:
            array = state[name]
            state[name] = array[:filled].cpu().numpy() if isinstance(array, th.Tensor) else array[:filled]
        capacity = len(self.start_owners)
        serials = np.arange(max(0, self.n_starts - capacity), self.n_starts)
        owners = self.start_owners[serials % capacity]
        serials = serials[owners >= self.n_adds - self.buffer_size]  # their slots are still in the ring
        start_frames = self.start_frames[serials % capacity]
        state["start_frames"] = start_frames.cpu().numpy() if isinstance(start_frames, th.Tensor) else start_frames
        state["start_owners"] = self.start_owners[serials % capacity]
        state["start_capacity"] = capacity
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        capacity = state.pop("start_capacity")
        state.setdefault("n_steps", 1)  # pickled before n-step returns existed
        state.setdefault("gamma", 0.99)
        self.__dict__.update(state)
        if self.frames_on_device:  # rebuilt on the CPU; the first add/sample moves it to self.device
            self.device, device = th.device("cpu"), self.device
        slots = (self.buffer_size, self.n_envs)
        for name in self._SLOT_ARRAYS:
            part = state[name]
            if len(part) == self.buffer_size and part.flags.writeable and part.flags.c_contiguous:
                # a full ring: use the unpickled array itself (no second 7 GB while loading)
                setattr(self, name, th.from_numpy(part) if name == "frames" and self.frames_on_device else part)
                continue
            full = (
                self._new_frames((*slots, *part.shape[2:]))
                if name == "frames"
                else np.zeros((*slots, *part.shape[2:]), part.dtype)
            )
            put(full, slice(0, len(part)), part)
            setattr(self, name, full)
        live = np.arange(self.n_starts - len(state["start_owners"]), self.n_starts)
        self.start_frames = self._new_frames((capacity, *self.frame_shape))
        self.start_owners = np.full(capacity, _DEAD, dtype=np.int64)
        put(self.start_frames, live % capacity, state["start_frames"])
        self.start_owners[live % capacity] = state["start_owners"]
        if self.frames_on_device:
            self.device = device
