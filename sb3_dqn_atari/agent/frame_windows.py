"""The index math of the frames-once replay memory (:class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer`, whose
docstring gives the layout and the windows): which stored frames make a sampled obs / next_obs stack, which
transitions can be sampled, and the n-step windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.vec_env import VecNormalize


class FrameWindows:
    """Mixin of :class:`~sb3_dqn_atari.agent.replay.FrameReplayBuffer`: validity, n-step windows and the gather of
    obs / next_obs stacks, on the attributes the buffer stores."""

    n_stack: int
    frame_channels: int
    frame_shape: tuple[int, ...]
    buffer_size: int
    n_envs: int
    n_steps: int
    gamma: float
    pos: int
    full: bool
    frames: np.ndarray | th.Tensor
    start_frames: np.ndarray | th.Tensor
    start_owners: np.ndarray
    episode_steps: np.ndarray
    start_serials: np.ndarray
    start_lengths: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray

    def valid_mask(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Which ``(slot, env)`` pairs can be sampled: stored, none of their frames overwritten, and (n-step)
        their n-step return known."""
        batch_inds, env_indices = np.asarray(batch_inds), np.asarray(env_indices)
        oldest = self.pos if self.full else 0
        age = (batch_inds - oldest) % self.buffer_size  # 0 for the oldest stored slot
        stored = (batch_inds >= 0) & (batch_inds < self.buffer_size) & (self.full | (batch_inds < self.pos))
        # obs and next_obs use the frames of the slots p - reach .. p (reach: episode_steps, capped at n_stack)
        reach = self.episode_steps[batch_inds % self.buffer_size, env_indices % self.n_envs]
        valid = stored & (env_indices >= 0) & (env_indices < self.n_envs) & (age >= reach)
        if self.n_steps > 1:
            valid &= self._return_known(batch_inds % self.buffer_size, env_indices % self.n_envs)
        return valid

    def _return_known(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Whether the n-step window of each slot is stored: ``n - 1`` later transitions, or its episode's end
        among them (a ``done``, which includes truncations, or a transition that starts a new episode)."""
        n = self.n_steps
        later = (self.pos - 1 - batch_inds) % self.buffer_size  # transitions stored after p (0: the newest)
        offsets = np.arange(n - 1)
        window = (batch_inds[..., None] + offsets) % self.buffer_size
        column = env_indices[..., None]
        done = (self.dones[window, column] != 0) & (offsets <= later[..., None])
        restart = (self.episode_steps[(window + 1) % self.buffer_size, column] == 0) & (offsets + 1 <= later[..., None])
        return (later >= n - 1) | (done | restart).any(axis=-1)

    def _has_valid(self, upper_bound: int) -> bool:
        """Whether any stored transition can be sampled. Only the ``n_stack`` oldest slots (once the ring
        wrapped) and the ``n_steps - 1`` newest can be invalid, so only a ring that small needs a look."""
        suspicious = (self.n_stack if self.full else 0) + self.n_steps - 1
        if upper_bound > suspicious:
            return True
        slots = np.repeat(np.arange(upper_bound), self.n_envs)
        envs = np.tile(np.arange(self.n_envs), upper_bound)
        return bool(self.valid_mask(slots, envs).any())


    def _n_step_returns(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(last slot, return, gamma^m)`` of each sampled n-step window (see the module docstring); the sum
        runs in float64 and is returned as float32, as SB3 stores rewards."""
        n = self.n_steps
        offsets = np.arange(n)
        window = (batch_inds[:, None] + offsets) % self.buffer_size
        column = env_indices[:, None]
        # the window ends at a done, or before a transition that starts a new episode (a new learn(): no done
        # was stored, so the return is cut there and bootstraps, as at a truncation)
        ends = self.dones[window, column] != 0
        ends[:, :-1] |= self.episode_steps[(window[:, :-1] + 1) % self.buffer_size, column] == 0
        # m - 1: the first end in the window, else n - 1 (a sampled window is complete: valid_mask)
        last_offset = np.where(ends.any(axis=1), ends.argmax(axis=1), n - 1)
        rewards = BaseBuffer._normalize_reward(self.rewards[window, column], env).astype(np.float64)
        discount_powers = self.gamma ** offsets.astype(np.float64)
        used = offsets <= last_offset[:, None]
        returns = (rewards * discount_powers * used).sum(axis=1, keepdims=True)
        discounts = self.gamma ** (last_offset + 1).astype(np.float64)
        last = window[np.arange(len(batch_inds)), last_offset]
        return last, returns.astype(np.float32), discounts.reshape(-1, 1).astype(np.float32)

    def _gather_stacks(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, next_inds: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | tuple[th.Tensor, th.Tensor]:
        """Rebuild the ``(B, n_stack * channels, H, W)`` obs stacks of ``batch_inds`` and next_obs stacks of
        ``next_inds`` (default: the same slots; n-step returns: the window's last slot).

        Two row gathers into one fresh ``(2, B * n_stack, frame)`` array (one allocation: two big ones freed
        together make glibc give the pages back and fault them in again on every call), then the few
        frames that lie in an episode's first state are patched in."""
        k, n_slots, batch = self.n_stack, self.buffer_size, len(batch_inds)
        frame_size = self.frames[0, 0].numel() if isinstance(self.frames, th.Tensor) else self.frames[0, 0].size
        next_inds = batch_inds if next_inds is None else next_inds
        # Window position j (0..k) of slot p is frames[p - k + j] (obs: j < k, next_obs: j >= 1) ...
        rows_obs = (batch_inds[:, None] + np.arange(-k, 0)) % n_slots
        rows_next = (next_inds[:, None] + np.arange(-k + 1, 1)) % n_slots
        if self.n_envs > 1:
            rows_obs = rows_obs * self.n_envs + env_indices[:, None]
            rows_next = rows_next * self.n_envs + env_indices[:, None]
        index = (rows_obs.ravel(), rows_next.ravel())
        # ... unless it lies in the episode's first state: position steps + j < k (one look when the slots are the same)
        obs_patch = self._start_patch(batch_inds, env_indices, frame_size)
        next_patch = obs_patch if next_inds is batch_inds else self._start_patch(next_inds, env_indices, frame_size)
        patches = (obs_patch[0], next_patch[1])
        stacked = (batch, k * self.frame_channels, *self.frame_shape[1:])
        frames = self.frames.reshape(n_slots * self.n_envs, frame_size)
        if isinstance(frames, th.Tensor):
            out_t = th.empty((2, batch * k, frame_size), dtype=th.uint8, device=frames.device)
            for i in range(2):
                th.index_select(frames, 0, th.as_tensor(index[i], device=frames.device), out=out_t[i])
                if len(patches[i][0]):
                    out_t[i, th.as_tensor(patches[i][0], device=frames.device)] = patches[i][1]
            return out_t[0].reshape(stacked), out_t[1].reshape(stacked)
        out = np.empty((2, batch * k, frame_size), dtype=np.uint8)
        for i in range(2):
            np.take(frames, index[i], axis=0, out=out[i], mode="clip")  # unbuffered; indices are in range
            if len(patches[i][0]):
                out[i, patches[i][0]] = patches[i][1]
        return out[0].reshape(stacked), out[1].reshape(stacked)

    def _start_patch(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, frame_size: int
    ) -> list[tuple[np.ndarray, Any]]:
        """For the obs and the next_obs gather: the rows inside an episode's first state, and their frames:
        zeros, then the stored ones (the last ``start_lengths`` of the ``n_stack`` frames)."""
        k = self.n_stack
        steps = self.episode_steps[batch_inds, env_indices]
        if not len(steps) or steps.min() >= k:  # no sample near its episode's start (most batches)
            return [(np.empty(0, np.int64), np.empty((0, frame_size), np.uint8))] * 2
        sample, position = np.nonzero(steps[:, None] + np.arange(k + 1) < k)
        slot, env_idx = batch_inds[sample], env_indices[sample]
        stored_at = steps[sample] + position - (k - self.start_lengths[slot, env_idx])
        kept = stored_at >= 0
        where = np.where(kept, self.start_serials[slot, env_idx] + stored_at, 0) % len(self.start_owners)
        start_frames = self.start_frames.reshape(len(self.start_owners), -1)
        in_obs, in_next = position < k, position >= 1  # window position j is obs frame j, next_obs frame j - 1
        if isinstance(start_frames, th.Tensor):
            frames: Any = start_frames.index_select(0, th.as_tensor(where, device=start_frames.device))
            frames[th.as_tensor(~kept, device=frames.device)] = 0
            obs_frames = frames[th.as_tensor(in_obs, device=frames.device)]
            next_frames = frames[th.as_tensor(in_next, device=frames.device)]
        else:
            frames = np.take(start_frames, where, axis=0)
            frames[~kept] = 0
            obs_frames, next_frames = frames[in_obs], frames[in_next]
        return [
            (sample[in_obs] * k + position[in_obs], obs_frames),
            (sample[in_next] * k + position[in_next] - 1, next_frames),
        ]



def put(store: np.ndarray | th.Tensor, index: Any, values: np.ndarray | th.Tensor) -> None:
    """``store[index] = values`` for a numpy or torch frame store."""
    if isinstance(store, th.Tensor):
        if isinstance(index, np.ndarray):
            index = th.as_tensor(index, device=store.device)
        store[index] = th.as_tensor(values, device=store.device)
    else:
        store[index] = values.cpu().numpy() if isinstance(values, th.Tensor) else values


def stack_layout(observation_space: spaces.Space, n_stack: int | None) -> tuple[int, int]:
    """``(n_stack, channels per frame)`` of a channel-first uint8 image stack, or a clear error."""
    alternative = "use SB3's ReplayBuffer (stable_baselines3.common.buffers.ReplayBuffer) instead"
    if not (isinstance(observation_space, spaces.Box) and observation_space.dtype == np.uint8):
        raise TypeError(f"FrameReplayBuffer stores uint8 image frames, not {observation_space}; {alternative}")
    shape = observation_space.shape
    if len(shape) != 3 or shape[2] < min(shape[:2]):  # channel-last: (H, W, C) with C smallest
        raise ValueError(
            f"FrameReplayBuffer needs channel-first (n_stack * channels, H, W) stacks, got shape {shape} "
            f"(wrap the env in VecTransposeImage after VecFrameStack); for other shapes {alternative}"
        )
    k = shape[0] if n_stack is None else n_stack
    if k < 1 or shape[0] % k:
        raise ValueError(f"FrameReplayBuffer: n_stack={n_stack} does not divide the {shape[0]} channels of {shape}")
    return k, shape[0] // k
