"""The evaluation preprocessing of either family without PyTorch or Stable-Baselines3, for the ONNX runtime:
:class:`AtariTwin`. It cannot be the training wrappers' code (they import SB3, which imports torch), so it does
what they do, in the same order and with the same random draws, and ``tests/test_export.py`` and
``tests/test_sb3_atari.py`` compare it byte for byte with ``NatureAtariWrapper`` and SB3's ``AtariWrapper``
(``terminal_on_life_loss=False, clip_reward=False``: full games, raw scores) under ``VecFrameStack`` +
``VecTransposeImage``:

* SB3 ``StickyActionEnv`` (``action_repeat_probability`` > 0): before every emulator frame, one draw from the
  env's ``np_random``; below 1 - p the new action is taken, else the previous one (NOOP after a reset);
* SB3 ``NoopResetEnv``: 1..``noop_max`` single-frame NOOPs drawn from the same ``np_random``; a game over among
  them resets again with the same ``reset`` arguments;
* SB3 ``MaxAndSkipEnv``: the action repeated ``frame_skip`` times, the per-pixel maximum of the last two raw
  frames; its two-slot buffer persists across steps and resets;
* SB3 ``FireResetEnv`` (AtariWrapper, games whose action 1 is FIRE): FIRE, then action 2, after every reset;
* the frame: :func:`~sb3_dqn_atari.atari.preprocessing.nature_frame` (NatureAtariWrapper) or OpenCV's
  ``COLOR_RGB2GRAY`` then ``resize(INTER_AREA)`` (SB3 ``WarpFrame``); ``(size, size)`` uint8.

The frame stack on top is gymnasium's ``FrameStackObservation`` (:func:`sb3_dqn_atari.atari.envs.stack_frames`).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_dqn_atari.atari.frameskip import set_frame_by_frame
from sb3_dqn_atari.atari.preprocessing import nature_frame
from sb3_dqn_atari.atari.spec import NATURE_WRAPPER, PlayerError, PreprocessingSpec


class AtariTwin(gym.Wrapper):
    """NatureAtariWrapper or SB3's AtariWrapper, evaluation flags, in numpy and OpenCV (see the module docstring).

    :param env: an ALE env with RGB observations (``*NoFrameskip-v4``; a NatureAtariWrapper spec sets others to
        one frame per step, as the wrapper does).
    :param max_episode_frames: truncate after this many emulator frames, checked after every frame with the ALE's
        episode frame counter (:class:`~sb3_dqn_atari.atari.wrappers.EpisodeFrameLimit`); None: the ALE's own limit.
    """

    def __init__(self, env: gym.Env, spec: PreprocessingSpec, max_episode_frames: int | None = None) -> None:
        super().__init__(env)
        spec.check_supported()
        unwrapped: Any = env.unwrapped
        if not hasattr(unwrapped, "ale"):
            raise PlayerError(f"{env.spec.id if env.spec else env} is not an ALE env; the model's is {spec.wrapper}")
        meanings = list(unwrapped.get_action_meanings())
        if spec.noop_max > 0 and meanings[spec.noop_action : spec.noop_action + 1] != ["NOOP"]:
            raise PlayerError(f"the env's action {spec.noop_action} is not NOOP ({meanings})")
        if spec.wrapper == NATURE_WRAPPER:
            set_frame_by_frame(env, spec.repeat_action_probability)
        self.spec_, self.max_episode_frames, self.ale = spec, max_episode_frames, unwrapped.ale
        self.fire = spec.fire_reset and "FIRE" in meanings  # SB3 AtariWrapper's rule
        if self.fire and (meanings[1] != "FIRE" or len(meanings) < 3):
            raise PlayerError(f"FireResetEnv needs action 1 to be FIRE and 3 actions or more ({meanings})")
        shape = env.observation_space.shape
        assert shape is not None and len(shape) == 3, f"expected RGB frames, got {env.observation_space}"
        self._pool = np.zeros((2, *shape), dtype=np.uint8)  # MaxAndSkipEnv's buffer: never cleared, as in SB3
        self._screen = np.zeros(shape, dtype=np.uint8)
        self._sticky = 0
        self._seed: int | None = None
        self.observation_space = spaces.Box(0, 255, (spec.frame_size, spec.frame_size), np.uint8)

    def _frame(self, rgb: np.ndarray) -> np.ndarray:
        size = self.spec_.frame_size
        if self.spec_.wrapper == NATURE_WRAPPER:
            return nature_frame(rgb, size)
        import cv2  # a dependency of SB3's Atari wrappers; torch-free

        return np.asarray(cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA))

    def _raw_step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One emulator frame: StickyActionEnv, then the env, then EpisodeFrameLimit."""
        p = self.spec_.action_repeat_probability
        if p <= 0.0 or self.env.unwrapped.np_random.random() >= p:
            self._sticky = action
        obs, reward, terminated, truncated, info = self.env.step(self._sticky)
        limit = self.max_episode_frames
        if limit is not None and not terminated and self.ale.getEpisodeFrameNumber() >= limit:
            truncated = True
        self._screen = obs
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _noop_reset(self) -> tuple[np.ndarray, dict[str, Any]]:
        """``env.reset`` (the same seed every time within one reset, as SB3 passes its kwargs on) and the no-ops."""
        self._sticky = 0
        obs, info = self.env.reset(seed=self._seed)
        if self.spec_.noop_max > 0:
            for _ in range(int(self.env.unwrapped.np_random.integers(1, self.spec_.noop_max + 1))):
                obs, _, terminated, truncated, info = self._raw_step(self.spec_.noop_action)
                if terminated or truncated:
                    self._sticky = 0
                    obs, info = self.env.reset(seed=self._seed)
        self._screen = obs
        return obs, info

    def _agent_step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """MaxAndSkipEnv: ``frame_skip`` frames, the max of the last two (stale slots when cut short)."""
        skip = self.spec_.frame_skip
        if skip <= 1:
            return self._raw_step(action)
        total, terminated, truncated, info = 0.0, False, False, dict[str, Any]()
        for i in range(skip):
            obs, reward, terminated, truncated, info = self._raw_step(action)
            if i >= skip - 2:
                self._pool[i - skip + 2] = obs
            total += reward
            if terminated or truncated:
                break
        return self._pool.max(axis=0), total, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._seed = seed
        obs, info = self._noop_reset()
        if self.fire:  # FireResetEnv: FIRE, then 2; a game over among them resets again
            for action in (1, 2):
                obs, _, terminated, truncated, _ = self._agent_step(action)
                if terminated or truncated:
                    self._noop_reset()
            info = {}
        self._seed = None
        return self._frame(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._agent_step(int(action))
        return self._frame(obs), reward, terminated, truncated, info

    def screen(self) -> np.ndarray:
        """The last raw RGB screen (for videos)."""
        return self._screen
