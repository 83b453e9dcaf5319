"""The envs an exported agent plays in, torch-free: :class:`AtariPlayEnv` rebuilds the Nature preprocessing in numpy,
frame for frame and byte for byte; :class:`VectorPlayEnv` stacks the observations of other envs (see
:mod:`sb3_dqn_atari.onnx.runtime`)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from sb3_dqn_atari.atari.envs import make_env
from sb3_dqn_atari.atari.preprocessing import nature_frame
from sb3_dqn_atari.onnx.metadata import PlayerError, PreprocessingSpec


class PlayEnv(Protocol):
    """What :meth:`OnnxAgent.play` needs from an environment."""

    def reset(self, seed: int | None = None) -> np.ndarray: ...

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]: ...

    def screen(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class AtariPlayEnv:
    """NumPy twin of NatureAtariWrapper (evaluation flags) + ``VecFrameStack`` + ``VecTransposeImage``.

    :param env_id: an ALE ``*NoFrameskip-v4`` id (frameskip 1, no sticky actions).
    :param spec: the recorded preprocessing (must be :data:`NATURE_WRAPPER`'s).
    :param frame_stack: frames per observation (4).
    :param max_episode_frames: truncate after this many emulator frames, counted with the ALE's episode
        frame counter after every raw frame like :class:`sb3_dqn_atari.atari.wrappers.EpisodeFrameLimit`
        (the paper's evaluation: 18,000 = 5 minutes); ``None``: only the ALE's own limit.
    :param render_mode: ``"human"`` opens the ALE's window.
    :param env_kwargs: extra ``gym.make`` arguments recorded with the model (e.g. ``full_action_space``).

    The raw frames are stepped on the ALE interface of the gymnasium env (``env.unwrapped.ale``), which is
    what ``AtariEnv.step`` does with frameskip 1, minus a screen copy on frames that are not pooled.
    """

    def __init__(
        self,
        env_id: str,
        spec: PreprocessingSpec,
        frame_stack: int,
        max_episode_frames: int | None = None,
        render_mode: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        spec.check_supported()
        self.spec = spec
        self.frame_stack = frame_stack
        self.max_episode_frames = max_episode_frames
        self.env = make_env(env_id, env_kwargs, render_mode, PlayerError)
        unwrapped = self.env.unwrapped
        if not hasattr(unwrapped, "ale"):
            raise PlayerError(f"{env_id} is not an ALE env, but the model's preprocessing is {spec.wrapper}")
        self.ale = unwrapped.ale
        action_set = getattr(unwrapped, "_action_set", None)
        self.action_set = list(action_set if action_set is not None else self.ale.getMinimalActionSet())
        meanings = self.action_meanings
        if spec.noop_max > 0 and (spec.noop_action >= len(meanings) or meanings[spec.noop_action] != "NOOP"):
            named = meanings[spec.noop_action] if spec.noop_action < len(meanings) else "not an action"
            raise PlayerError(f"{env_id}'s action {spec.noop_action} is {named}, not NOOP")
        height, width = self.ale.getScreenDims()
        # MaxAndSkipEnv's buffer: allocated once, never cleared (not even on reset), as in SB3.
        self._pool = np.zeros((2, height, width, 3), dtype=np.uint8)
        self._max = np.zeros((height, width, 3), dtype=np.uint8)
        self._screen = np.zeros((height, width, 3), dtype=np.uint8)
        self._last_screen = self._screen
        size = spec.frame_size
        self._stack = np.zeros((frame_stack, size, size), dtype=np.uint8)
        self._seed: int | None = None

    @property
    def action_meanings(self) -> list[str]:
        return list(self.env.unwrapped.get_action_meanings())  # type: ignore[attr-defined]

    def _raw_reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        return np.asarray(obs)

    def _act(self, action: int) -> tuple[float, bool, bool]:
        """One emulator frame, as ``AtariEnv.step`` with frameskip 1 plus ``EpisodeFrameLimit``."""
        reward = float(self.ale.act(self.action_set[action], 1.0))
        terminated = bool(self.ale.game_over(with_truncation=False))
        truncated = bool(self.ale.game_truncated())
        if (
            self.max_episode_frames is not None
            and not terminated
            and self.ale.getEpisodeFrameNumber() >= self.max_episode_frames
        ):
            truncated = True
        return reward, terminated, truncated

    def reset(self, seed: int | None = None) -> np.ndarray:
        """A new game: gymnasium reset (seeded when ``seed`` is given), then SB3 ``NoopResetEnv``'s no-ops."""
        self._seed = seed
        raw = self._raw_reset()
        spec = self.spec
        if spec.noop_max > 0:
            n_noops = int(self.env.unwrapped.np_random.integers(1, spec.noop_max + 1))
            for _ in range(n_noops):
                _, terminated, truncated = self._act(spec.noop_action)
                # NoopResetEnv resets with the same kwargs (the same seed) when a no-op ends the game.
                raw = self._raw_reset() if terminated or truncated else self.ale.getScreenRGB()
        self._screen[...] = raw
        self._last_screen = self._screen
        self._stack[...] = 0
        self._stack[-1] = nature_frame(raw, spec.frame_size)
        return self._stack.copy()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One agent step: the action repeated ``frame_skip`` times, the last two frames max-pooled."""
        skip = self.spec.frame_skip
        total_reward = 0.0
        terminated = truncated = False
        if skip > 1:
            for i in range(skip):
                reward, terminated, truncated = self._act(action)
                if i >= skip - 2:
                    self.ale.getScreenRGB(self._pool[i - (skip - 2)])
                total_reward += reward
                if terminated or truncated:
                    break
            # = MaxAndSkipEnv's self._obs_buffer.max(axis=0), with stale slots when the repeat was cut short.
            frame_rgb = np.maximum(self._pool[0], self._pool[1], out=self._max)
            if i == skip - 1:
                self._last_screen = self._pool[1]
            else:
                self.ale.getScreenRGB(self._screen)
                self._last_screen = self._screen
        else:
            total_reward, terminated, truncated = self._act(action)
            self.ale.getScreenRGB(self._screen)
            frame_rgb = self._last_screen = self._screen
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = nature_frame(frame_rgb, self.spec.frame_size)
        info = {"lives": int(self.ale.lives()), "episode_frame_number": int(self.ale.getEpisodeFrameNumber())}
        return self._stack.copy(), total_reward, terminated, truncated, info

    def screen(self) -> np.ndarray:
        """The last raw RGB screen (for videos); a view that the next ``step`` overwrites."""
        return self._last_screen

    def close(self) -> None:
        self.env.close()


class VectorPlayEnv:
    """A gymnasium env whose observations go to the network as they are (``MlpPolicy`` agents), with
    ``VecFrameStack``'s stacking on the last axis when ``frame_stack > 1``."""

    def __init__(
        self,
        env_id: str,
        dtype: str,
        frame_stack: int = 1,
        render_mode: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.env = make_env(env_id, env_kwargs, render_mode, PlayerError)
        self.dtype = np.dtype(dtype)
        self.frame_stack = frame_stack
        self._stack: np.ndarray | None = None
        self._render = render_mode == "rgb_array"

    def _push(self, obs: Any, fresh: bool) -> np.ndarray:
        obs = np.asarray(obs, dtype=self.dtype)
        if self.frame_stack == 1:
            return obs
        if fresh or self._stack is None:
            self._stack = np.zeros((*obs.shape[:-1], obs.shape[-1] * self.frame_stack), dtype=self.dtype)
        width = obs.shape[-1]
        self._stack[..., :-width] = self._stack[..., width:]
        self._stack[..., -width:] = obs
        return self._stack.copy()

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return self._push(obs, fresh=True)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._push(obs, fresh=False), float(reward), bool(terminated), bool(truncated), dict(info)

    def screen(self) -> np.ndarray | None:
        frame = self.env.render() if self._render else None
        return np.asarray(frame) if frame is not None else None

    def close(self) -> None:
        self.env.close()
