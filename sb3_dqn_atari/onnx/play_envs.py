"""The envs an exported agent plays in, torch-free: :class:`AtariPlayEnv` on the one builder's torch-free variant
(:func:`sb3_dqn_atari.atari.envs.make_atari_env`: the recorded family's preprocessing in numpy and OpenCV, frame for
frame and byte for byte), :class:`VectorPlayEnv` for other envs (see :mod:`sb3_dqn_atari.onnx.runtime`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation

from sb3_dqn_atari.atari.envs import make_atari_env, make_env
from sb3_dqn_atari.atari.spec import PlayerError, PreprocessingSpec


class PlayEnv:
    """What :meth:`OnnxAgent.play` needs from an environment: a gymnasium env whose ``reset`` gives the observation
    alone, and its raw screens (for videos)."""

    env: gym.Env

    def reset(self, seed: int | None = None) -> np.ndarray:
        return np.asarray(self.env.reset(seed=seed)[0])

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs), float(reward), bool(terminated), bool(truncated), dict(info)

    def screen(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        self.env.close()


class AtariPlayEnv(PlayEnv):
    """The evaluation pipeline of the model's preprocessing family (``spec``), with ``frame_stack`` frames.

    :param env_id: an ALE id (``*NoFrameskip-v4``; a NatureAtariWrapper spec sets others to one frame per step).
    :param max_episode_frames: truncate after this many emulator frames (the paper's evaluation: 18,000 = 5
        minutes); ``None``: only the ALE's own limit.
    :param render_mode: ``"human"`` opens the ALE's window.
    :param env_kwargs: extra ``gym.make`` arguments recorded with the model (e.g. ``full_action_space``).
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
        self.env = make_atari_env(
            env_id, spec, frame_stack, env_kwargs=env_kwargs, max_episode_frames=max_episode_frames,
            torch_free=True, render_mode=render_mode, error=PlayerError,
        )

    @property
    def action_meanings(self) -> list[str]:
        return list(self.env.unwrapped.get_action_meanings())  # type: ignore[attr-defined]

    def screen(self) -> np.ndarray:
        """The last raw RGB screen (for videos); the next ``step`` may overwrite it."""
        return np.asarray(self.env.get_wrapper_attr("screen")())


class VectorPlayEnv(PlayEnv):
    """A gymnasium env whose observations go to the network as they are (``MlpPolicy`` agents), with
    ``VecFrameStack``'s stacking (on the last axis, oldest first) when ``frame_stack > 1``."""

    def __init__(
        self,
        env_id: str,
        dtype: str,
        frame_stack: int = 1,
        render_mode: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.env = self.raw = make_env(env_id, env_kwargs, render_mode, PlayerError)
        if frame_stack > 1:
            space: Any = self.env.observation_space
            stacked = gym.spaces.Box(
                np.concatenate([space.low] * frame_stack, -1), np.concatenate([space.high] * frame_stack, -1)
            )
            self.env = gym.wrappers.TransformObservation(
                FrameStackObservation(self.env, frame_stack, padding_type="zero"),
                lambda o: np.concatenate(list(o), axis=-1),
                stacked,
            )
        cast = np.dtype(dtype)  # the graph's input dtype
        self.env = gym.wrappers.TransformObservation(self.env, lambda o: np.asarray(o).astype(cast), None)
        self._render = render_mode == "rgb_array"

    def screen(self) -> np.ndarray | None:
        frame = self.env.render() if self._render else None
        return np.asarray(frame) if frame is not None else None
