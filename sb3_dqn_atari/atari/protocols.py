"""The env of an evaluation protocol (:data:`PROTOCOLS`: Mnih et al. 2015's no-op starts, Machado et al. 2018's
sticky actions; see :mod:`sb3_dqn_atari.evaluation`) for any ALE id of a game, with the protocol's settings
forced: :func:`make_eval_env`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_dqn_atari.atari.preprocessing import FRAME_SIZE
from sb3_dqn_atari.atari.wrappers import ACTION_REPEAT, EVAL_MAX_FRAMES, NOOP_MAX, NatureAtariWrapper
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
    import ale_py

    gym.register_envs(ale_py)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc}); pass an Atari id like BreakoutNoFrameskip-v4") from None
    if "game" not in spec.kwargs or not str(spec.entry_point).startswith("ale_py"):
        raise UserError(f"{env_id} is not an ALE Atari env; pass an Atari id like BreakoutNoFrameskip-v4")
    if spec.kwargs.get("obs_type", "rgb") != "rgb":
        raise UserError(f"{env_id} gives {spec.kwargs['obs_type']} observations; the protocol needs the RGB screen")
    return str(spec.kwargs["game"])


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


class StackedFrames(gym.Wrapper):
    """The last ``n_stack`` frames as one observation, exactly as rl-zoo3's ``frame_stack: 4`` gives them to
    the network (SB3 ``VecFrameStack`` then ``VecTransposeImage``) for a single env: zeros at the start of an
    episode, newest frame last; ``(n_stack, H, W)`` when ``channels_first`` else ``(H, W, n_stack)``."""

    def __init__(self, env: gym.Env, n_stack: int = HISTORY_LENGTH, channels_first: bool = True) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        assert shape is not None and len(shape) == 3 and shape[2] == 1, f"expected (H, W, 1) frames, got {shape}"
        self.n_stack = n_stack
        self.channels_first = channels_first
        self._stack = np.zeros((n_stack, shape[0], shape[1]), dtype=np.uint8)
        out_shape = self._stack.shape if channels_first else (shape[0], shape[1], n_stack)
        self.observation_space = spaces.Box(low=0, high=255, shape=out_shape, dtype=np.uint8)

    def _observation(self) -> np.ndarray:
        return self._stack.copy() if self.channels_first else np.ascontiguousarray(self._stack.transpose(1, 2, 0))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        frame, info = self.env.reset(**kwargs)
        self._stack[:] = 0
        self._stack[-1] = frame[:, :, 0]
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        frame, reward, terminated, truncated, info = self.env.step(action)
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = frame[:, :, 0]
        return self._observation(), reward, terminated, truncated, info


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


class ProtocolEnv(StackedFrames):
    """The evaluation env: stacked frames on top of the protocol's stack, with its :class:`EvalEnvInfo` and the
    :class:`RawFrameTap` at the bottom (no-op count, episode frames, video frames)."""

    def __init__(self, env: gym.Env, tap: RawFrameTap, info: EvalEnvInfo, n_stack: int, channels_first: bool) -> None:
        super().__init__(env, n_stack=n_stack, channels_first=channels_first)
        self.tap = tap
        self.eval_info = info


def _obs_layout(obs_shape: Sequence[int] | None) -> tuple[int, bool]:
    """``(n_stack, channels_first)`` for the observation shape a model expects."""
    if obs_shape is None:
        return HISTORY_LENGTH, True
    shape = tuple(int(s) for s in obs_shape)
    if len(shape) == 3 and shape[1:] == (FRAME_SIZE, FRAME_SIZE) and shape[0] <= 16:
        return shape[0], True
    if len(shape) == 3 and shape[:2] == (FRAME_SIZE, FRAME_SIZE):
        return shape[2], False
    raise UserError(
        f"the model expects observations of shape {shape}; the evaluation env gives stacked 84x84 frames "
        f"({HISTORY_LENGTH}, {FRAME_SIZE}, {FRAME_SIZE}): was it trained on another env or preprocessing?"
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

    Long on purpose: one sequence of steps, in this order, sharing their state.
    """
    proto = get_protocol(protocol)
    game = atari_game(env_id)
    n_stack, channels_first = _obs_layout(obs_shape)
    settings: dict[str, Any] = {"frameskip": 1, "repeat_action_probability": proto.repeat_action_probability}
    env: gym.Env = gym.make(env_id, **settings, full_action_space=False)
    minimal = int(env.action_space.n)  # type: ignore[attr-defined]
    full_action_space = False
    if n_actions is not None and n_actions != minimal:
        env.close()
        if n_actions != FULL_ACTION_SET:
            raise UserError(
                f"the model has {n_actions} actions but {env_id} has {minimal} (minimal set) or "
                f"{FULL_ACTION_SET} (full set): was the model trained on another game?"
            )
        full_action_space = True
        env = gym.make(env_id, **settings, full_action_space=True)
    if raw_wrapper is not None:
        env = raw_wrapper(env)
    tap = RawFrameTap(env)
    env = NatureAtariWrapper(
        tap,
        noop_max=proto.noop_max,
        frame_skip=proto.frame_skip,
        terminal_on_life_loss=False,
        clip_reward=False,
        max_episode_frames=max_episode_frames,
    )
    info = EvalEnvInfo(
        env_id=env_id,
        game=game,
        protocol=proto,
        n_actions=int(env.action_space.n),  # type: ignore[attr-defined]
        full_action_space=full_action_space,
        obs_shape=(n_stack, FRAME_SIZE, FRAME_SIZE) if channels_first else (FRAME_SIZE, FRAME_SIZE, n_stack),
        max_episode_frames=max_episode_frames,
    )
    eval_env = ProtocolEnv(env, tap, info, n_stack=n_stack, channels_first=channels_first)
    if seed is not None:
        eval_env.action_space.seed(seed)
    return eval_env
