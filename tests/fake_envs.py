"""Small, fast environments for tests that need many agent steps."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class RandomWalkEnv(gym.Env):
    """A 4-d observation that drifts with the action; episodes end at random (about 1 in 50 steps)."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-10.0, 10.0, (4,), np.float32)
        self.action_space = spaces.Discrete(3)
        self._state = np.zeros(4, np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._state = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return self._state.copy(), {}

    def step(self, action: int):
        self._state = np.clip(self._state + 0.1 * (action - 1) + self.np_random.normal(0, 0.1, 4), -10, 10)
        self._state = self._state.astype(np.float32)
        reward = float(self._state[0] > 0)
        terminated = bool(self.np_random.random() < 0.02)
        return self._state.copy(), reward, terminated, False, {}


class ImageWalkEnv(RandomWalkEnv):
    """RandomWalkEnv seen through channel-first 36x36 uint8 frames (:meth:`_image`), for CnnPolicy and
    FrameReplayBuffer checks."""

    frames = 1

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(0, 255, (self.frames, 36, 36), np.uint8)

    def _image(self, state: np.ndarray) -> np.ndarray:
        image = np.zeros((self.frames, 36, 36), np.uint8)
        for k in range(self.frames):
            image[k] = np.clip(128 + 12 * state[k], 0, 255)
            image[k, : int(np.clip(18 + state[(k + 1) % 4] * 3, 0, 36)), k :: self.frames] = 255
        return image

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        state, info = super().reset(seed=seed, options=options)
        return self._image(state), info

    def step(self, action: int):  # type: ignore[override]
        state, reward, terminated, truncated, info = super().step(action)
        return self._image(state), reward, terminated, truncated, info


class TinyImageEnv(ImageWalkEnv):
    """One 1x36x36 frame: the position as the grey level, the velocity as the height of a white band."""


class FourFrameEnv(ImageWalkEnv):
    """Four stacked 36x36 frames (channel-first), one per state coordinate."""

    frames = 4
