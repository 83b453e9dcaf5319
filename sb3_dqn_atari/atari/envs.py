"""The one env builder: ``gym.make`` with one-line errors (:func:`make_env`), and the stacked Atari env of a model's
preprocessing (:func:`make_atari_env`) that the evaluation (:mod:`sb3_dqn_atari.atari.protocols`), the export's
verification and the ONNX runtime play on; :class:`EpisodeResult`, what an episode gives. Torch-free: the
training wrappers (SB3, hence torch) are imported only when the torch side asks for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation, TransformObservation

from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.errors import UserError

if TYPE_CHECKING:
    from sb3_dqn_atari.atari.spec import PreprocessingSpec


@dataclass(frozen=True)
class EpisodeResult:
    """One played episode: raw score over all lives, agent steps, emulator frames (None outside the ALE) of which
    ``noops`` before the first action (no-ops, and FIRE for SB3's AtariWrapper), whether the frame cap cut it."""

    score: float
    steps: int
    frames: int | None
    noops: int | None
    truncated: bool
    seconds: float = field(default=0.0, compare=False)


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    render_mode: str | None = None,
    error: type[UserError] = UserError,
) -> gym.Env:
    """``gym.make(env_id, render_mode=..., **env_kwargs)`` (a retired id mapped to its successor); whatever stops it
    (an unknown id, arguments the env does not take, a missing ROM, no display for a window) ends as one line of
    ``error``."""
    env_id = current_env_id(env_id)
    register_ale()
    try:
        return gym.make(env_id, render_mode=render_mode, **(env_kwargs or {}))
    except Exception as exc:  # gymnasium's errors, the env constructor's TypeError/ValueError, ALE's, SDL's
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        if render_mode == "human" and not isinstance(exc, gym.error.Error):
            raise error(f"cannot open a window for {env_id} ({exc.__class__.__name__}: {text})") from exc
        args = f" with {json.dumps(env_kwargs, default=str)[:120]}" if env_kwargs else ""
        raise error(f"cannot make env {env_id!r}{args}: {text}") from exc


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an ALE env (a :class:`UserError` for an unknown id)."""
    register_ale()
    try:
        return "ale_py" in str(gym.spec(env_id).entry_point)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc})") from exc


def register_ale() -> None:
    """Register the ALE's ids with gymnasium (``BreakoutNoFrameskip-v4``, ``ALE/Breakout-v5``), if ale-py is here."""
    try:
        import ale_py
    except ImportError:
        return
    gym.register_envs(ale_py)


def stack_frames(env: gym.Env, n_stack: int, channels_first: bool = True) -> gym.Env:
    """The last ``n_stack`` frames of an env of ``(H, W)`` (or ``(H, W, 1)``) frames, as rl-zoo3's ``frame_stack``
    (SB3 ``VecFrameStack`` + ``VecTransposeImage``) gives them: zeros before the episode start, the newest frame
    last, ``(n_stack, H, W)`` (``(H, W, n_stack)`` when not ``channels_first``). gymnasium's FrameStackObservation."""
    shape = env.observation_space.shape
    assert shape is not None and (len(shape) == 2 or shape[2:] == (1,)), f"expected gray frames, got {shape}"
    if len(shape) == 3:
        env = TransformObservation(env, lambda o: o[:, :, 0], gym.spaces.Box(0, 255, shape[:2], np.uint8))
    env = FrameStackObservation(env, n_stack, padding_type="zero")
    if channels_first:
        return env
    space = gym.spaces.Box(0, 255, (*shape[:2], n_stack), np.uint8)
    return TransformObservation(env, lambda o: np.ascontiguousarray(np.moveaxis(o, 0, -1)), space)


def make_atari_env(
    env_id: str,
    spec: PreprocessingSpec,
    n_stack: int,
    *,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_frames: int | None = None,
    torch_free: bool = False,
    channels_first: bool = True,
    raw_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    render_mode: str | None = None,
    error: type[UserError] = UserError,
) -> gym.Env:
    """The env a model of ``spec`` plays on, for full games with raw scores: the ALE env (``env_kwargs``), then
    ``raw_wrapper`` (instrumentation), the family's wrapper with ``terminal_on_life_loss=False, clip_reward=False``
    (:class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper` or SB3's ``AtariWrapper`` with the recorded
    arguments; with ``torch_free``, their twin :class:`~sb3_dqn_atari.atari.twin.AtariTwin`), and
    :func:`stack_frames`. The ALE's sticky actions are the spec's ``repeat_action_probability`` for the Nature family
    (one frame per step), ``env_kwargs``' for SB3's (which adds its own, ``action_repeat_probability``)."""
    env = make_env(env_id, env_kwargs, render_mode, error)
    if raw_wrapper is not None:
        env = raw_wrapper(env)
    if torch_free:
        from sb3_dqn_atari.atari.twin import AtariTwin

        env = AtariTwin(env, spec, max_episode_frames)
    else:
        from sb3_dqn_atari.atari.wrappers import family_wrapper

        env = family_wrapper(env, spec, max_episode_frames)
    return stack_frames(env, n_stack, channels_first)
