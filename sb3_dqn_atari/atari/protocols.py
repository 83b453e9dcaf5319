"""The env of an evaluation protocol (:data:`PROTOCOLS`: Mnih et al. 2015's no-op starts, Machado et al. 2018's
sticky actions; see :mod:`sb3_dqn_atari.evaluation`) for any ALE id of a game, with the protocol's settings
forced: :func:`make_eval_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from sb3_dqn_atari.atari.envs import make_atari_env, make_env, register_ale
from sb3_dqn_atari.atari.spec import NATURE_SPEC, NATURE_WRAPPER, PreprocessingSpec
from sb3_dqn_atari.atari.wrappers import ACTION_REPEAT, EVAL_MAX_FRAMES, NOOP_MAX
from sb3_dqn_atari.common.errors import UserError

#: Agent history length (Extended Data Table 1).
HISTORY_LENGTH = 4
#: Size of the full Atari 2600 action set.
FULL_ACTION_SET = 18

# ------------------------------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """The settings that define an evaluation protocol (see the module docstring for the sources)."""

    name: str
    noop_max: int
    repeat_action_probability: float
    #: the paper's action repeat (frames per agent step in the callback's files); the model's spec plays its own
    frame_skip: int = ACTION_REPEAT
    description: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "nature": Protocol(
        "nature",
        noop_max=NOOP_MAX,
        repeat_action_probability=0.0,
        description="Mnih et al. 2015: 1-30 no-op starts, no sticky actions",
    ),
    "machado": Protocol(
        "machado",
        noop_max=0,
        repeat_action_probability=0.25,
        description="Machado et al. 2018: sticky actions p=0.25, no no-op starts",
    ),
}


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name`` (``"nature"`` or ``"machado"``)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None


def atari_game(env_id: str) -> str:
    """The ALE ROM id (``"breakout"``) behind a registered Atari env id, or a :class:`UserError`."""
    register_ale()
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc}); pass an Atari id like BreakoutNoFrameskip-v4") from None
    if "game" not in spec.kwargs or not str(spec.entry_point).startswith("ale_py"):
        raise UserError(f"{env_id} is not an ALE Atari env; pass an Atari id like BreakoutNoFrameskip-v4")
    if spec.kwargs.get("obs_type", "rgb") != "rgb":
        raise UserError(f"{env_id} gives {spec.kwargs['obs_type']} observations; the protocol needs the RGB screen")
    return str(spec.kwargs["game"])


def game_or_none(env_id: str) -> str | None:
    """The Atari game of ``env_id``, None for another env (or a ``module:Env`` id, which gymnasium would import)."""
    if ":" in env_id:
        return None
    try:
        return atari_game(env_id)
    except UserError:
        return None


# ------------------------------------------------------------------------------------------------- env pieces


class RawFrameTap(gym.Wrapper):
    """Sits directly on the single-frame ALE env: counts emulator frames since the last reset and can hand
    every raw RGB screen (the reset screen, then one per emulator frame) to ``sink`` (for videos)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames = 0
        self.sink: Callable[[np.ndarray], None] | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.frames = 0
        if self.sink is not None:
            self.sink(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames += 1
        if self.sink is not None:
            self.sink(obs)
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class EvalEnvInfo:
    """What :func:`make_eval_env` built: the facts an evaluation result records."""

    env_id: str
    game: str
    protocol: Protocol
    n_actions: int
    full_action_space: bool
    obs_shape: tuple[int, ...]
    max_episode_frames: int
    preprocessing: PreprocessingSpec = NATURE_SPEC


class ProtocolEnv(gym.Wrapper):
    """The evaluation env (stacked frames), with its :class:`EvalEnvInfo` and the :class:`RawFrameTap` at the
    bottom (no-op count, episode frames, video frames)."""

    def __init__(self, env: gym.Env, tap: RawFrameTap, info: EvalEnvInfo) -> None:
        super().__init__(env)
        self.tap = tap
        self.eval_info = info


def _obs_layout(obs_shape: Sequence[int] | None, size: int) -> tuple[int, bool]:
    """``(n_stack, channels_first)`` for the observation shape a model expects, of ``size`` x ``size`` frames."""
    if obs_shape is None:
        return HISTORY_LENGTH, True
    shape = tuple(int(s) for s in obs_shape)
    if len(shape) == 3 and shape[1:] == (size, size) and shape[0] <= 16:
        return shape[0], True
    if len(shape) == 3 and shape[:2] == (size, size):
        return shape[2], False
    raise UserError(
        f"the model expects observations of shape {shape}; the evaluation env gives stacked {size}x{size} frames "
        f"({HISTORY_LENGTH}, {size}, {size}): was it trained on another env or preprocessing?"
    )


def make_eval_env(
    env_id: str,
    protocol: str = "nature",
    seed: int | None = None,
    *,
    n_actions: int | None = None,
    obs_shape: Sequence[int] | None = None,
    max_episode_frames: int = EVAL_MAX_FRAMES,
    raw_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    spec: PreprocessingSpec = NATURE_SPEC,
) -> ProtocolEnv:
    """The evaluation env of ``protocol`` for the game of ``env_id``, observations as the model was trained on.

    :param env_id: any registered ALE id of the game (``BreakoutNoFrameskip-v4``, ``ALE/Breakout-v5``).
    :param protocol: ``"nature"`` (Mnih et al. 2015) or ``"machado"`` (Machado et al. 2018).
    :param seed: seeds the action space; pass it to the first ``reset(seed=...)`` as well (which
        :func:`evaluate_policy_protocol` does) to seed the emulator and the no-op draws.
    :param n_actions: the model's number of actions; selects the minimal or the full (18) action set and
        raises a :class:`UserError` when the game has neither. ``None``: the minimal set.
    :param obs_shape: the model's observation shape, ``(4, 84, 84)`` (rl-zoo3, channel first) or ``(84, 84, 4)``.
    :param max_episode_frames: the 5-minute cap, 18,000 emulator frames (no-op frames included).
    :param raw_wrapper: for instrumentation: a wrapper put directly on the single-frame ALE env, under
        every preprocessing step (tests use it to record the raw rewards).
    :param spec: the preprocessing the model was trained with (:mod:`sb3_dqn_atari.atari.spec`; default the
        paper's): its family, frame skip, frame size, and FIRE on reset; the protocol sets the no-op starts and
        the sticky actions, and every family plays full games with raw scores.

    Long on purpose: one sequence of steps, in this order, sharing their state.
    """
    proto = get_protocol(protocol)
    game = atari_game(env_id)
    # the protocol decides the sticky actions; the model's preprocessing, the frames
    if spec.wrapper == NATURE_WRAPPER:
        spec = replace(spec, repeat_action_probability=proto.repeat_action_probability)
    spec = replace(spec, noop_max=proto.noop_max, action_repeat_probability=0.0)
    n_stack, channels_first = _obs_layout(obs_shape, spec.frame_size)
    settings: dict[str, Any] = {"frameskip": 1, "repeat_action_probability": proto.repeat_action_probability}
    probe = make_env(env_id, {**settings, "full_action_space": False})
    minimal = int(probe.action_space.n)  # type: ignore[attr-defined]
    probe.close()
    full_action_space = n_actions is not None and n_actions != minimal
    if full_action_space and n_actions != FULL_ACTION_SET:
        raise UserError(
            f"the model has {n_actions} actions but {env_id} has {minimal} (minimal set) or "
            f"{FULL_ACTION_SET} (full set): was the model trained on another game?"
        )
    taps: list[RawFrameTap] = []

    def instrument(env: gym.Env) -> gym.Env:
        taps.append(RawFrameTap(raw_wrapper(env) if raw_wrapper is not None else env))
        return taps[-1]

    env = make_atari_env(
        env_id,
        spec,
        n_stack,
        env_kwargs={**settings, "full_action_space": full_action_space},
        max_episode_frames=max_episode_frames,
        channels_first=channels_first,
        raw_wrapper=instrument,
    )
    info = EvalEnvInfo(
        env_id=env_id,
        game=game,
        protocol=proto,
        n_actions=int(env.action_space.n),  # type: ignore[attr-defined]
        full_action_space=full_action_space,
        obs_shape=env.observation_space.shape or (),
        max_episode_frames=max_episode_frames,
        preprocessing=spec,
    )
    eval_env = ProtocolEnv(env, taps[0], info)
    if seed is not None:
        eval_env.action_space.seed(seed)
    return eval_env
