"""The Nature DQN Atari preprocessing as gymnasium wrappers (usable as rl-zoo3's ``env_wrapper``).

Sources: Mnih et al. 2015 (Methods, Extended Data Table 1) and DeepMind's Lua code (``alewrap``'s
``GameEnvironment``, ``run_gpu``, ``dqn/Scale.lua``). Where SB3 already does a step exactly, we reuse it:

======================  ===============================================  ==========================
step                    paper / Lua code                                 implementation
======================  ===============================================  ==========================
no-op starts            1–30 single-frame no-ops at every start          SB3 ``NoopResetEnv`` (real
                        (``nextRandomGame``, ``random_starts=30``)       resets) + :class:`LifeLossTerminal`
                                                                         (restarts after a life loss)
life loss               terminal for the learner in training, checked    :class:`LifeLossTerminal`,
                        after every raw frame of the action repeat,      *below* the frame skip so it
                        game continues                                   breaks the repeat like alewrap
action repeat / max     4 frames, max of the last two RGB frames         SB3 ``MaxAndSkipEnv(skip=4)``
frame                   Y, torch7 area "bilinear" 84×84, byte            :class:`NatureFrame`
reward                  sign clipping                                    SB3 ``ClipRewardEnv``
FIRE on reset           none in DeepMind's code                          not added
sticky actions          none (ALE v4 / NoFrameskip-v4)                   ``repeat_action_probability``
                                                                         (0; Machado et al.: 0.25)
======================  ===============================================  ==========================

The env under the wrapper plays one emulator frame per step with the wrapper's sticky actions: an
``ALE/<Game>-v5`` env (frameskip 4 and sticky actions 0.25 in the env itself) is set right in place, with one
note (:func:`sb3_dqn_atari.atari.frameskip.set_frame_by_frame`), never repeated 4 × 4 = 16 frames.

Frame stacking (4) stays rl-zoo3's ``frame_stack: 4`` (SB3's ``VecFrameStack``).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.atari_wrappers import AtariWrapper, ClipRewardEnv, MaxAndSkipEnv, NoopResetEnv

from sb3_dqn_atari.atari.frameskip import set_frame_by_frame
from sb3_dqn_atari.atari.preprocessing import FRAME_SIZE, nature_frame
from sb3_dqn_atari.atari.spec import NATURE_WRAPPER, WRAPPER_ARGS, PreprocessingSpec
from sb3_dqn_atari.common.errors import UserError

#: Extended Data Table 1, "no-op max".
NOOP_MAX = 30
#: Extended Data Table 1, "action repeat".
ACTION_REPEAT = 4
#: Methods, evaluation: "up to 5 min" of play at 60 Hz = 18,000 emulator frames.
EVAL_MAX_FRAMES = 18_000


class LifeLossTerminal(gym.Wrapper):
    """A lost life ends the learner's episode; the game goes on.

    Placed directly on the single-frame ALE env (below the frame skip), as alewrap's ``step`` checks
    ``lives < previous lives`` after every repeated frame and stops repeating the action.
    ``run_gpu`` calls ``nextRandomGame`` after *every* terminal, so the restart after a life loss also
    plays a random number (1–``noop_max``) of single-frame no-ops, without resetting the game.
    A real game over resets the game (the wrapped env's reset does its own no-op starts).
    """

    def __init__(self, env: gym.Env, noop_max: int = NOOP_MAX) -> None:
        super().__init__(env)
        self.noop_max = noop_max
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            n_noops = int(self.unwrapped.np_random.integers(1, self.noop_max + 1))
            info = {}
            for _ in range(n_noops):
                obs, _, terminated, truncated, info = self.env.step(0)
                if terminated or truncated:
                    obs, info = self.env.reset()
                    break
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        return obs, info


class NatureFrame(gym.ObservationWrapper):
    """RGB ``(210, 160, 3)`` → luminance, torch7 area resize, byte: ``(84, 84, 1)`` uint8 (see
    :func:`sb3_dqn_atari.atari.preprocessing.nature_frame`). Channel-last like SB3's ``WarpFrame`` so that
    ``VecFrameStack`` and ``VecTransposeImage`` give the ``(4, 84, 84)`` input of the network."""

    def __init__(self, env: gym.Env, size: int = FRAME_SIZE) -> None:
        super().__init__(env)
        self.size = size
        self.observation_space = spaces.Box(low=0, high=255, shape=(size, size, 1), dtype=np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return nature_frame(observation, self.size)[:, :, None]


class EpisodeFrameLimit(gym.Wrapper):
    """Truncate an episode after ``max_frames`` emulator frames (the evaluation's 5-minute cap).

    Counts the ALE's own frame counter, so it is exact whatever the action repeat."""

    def __init__(self, env: gym.Env, max_frames: int = EVAL_MAX_FRAMES) -> None:
        super().__init__(env)
        self.max_frames = max_frames

    def _frames(self) -> int:
        return int(self.env.unwrapped.ale.getEpisodeFrameNumber())  # type: ignore[attr-defined]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["episode_frame_number"] = self._frames()
        if not terminated and self._frames() >= self.max_frames:
            truncated = True
        return obs, reward, terminated, truncated, info


class NatureAtariWrapper(gym.Wrapper):
    """The paper's Atari preprocessing for training (defaults) or evaluation (flags).

    :param env: an ALE env, possibly inside a ``Monitor``; set to one emulator frame per step.
    :param noop_max: random single-frame no-ops at each start, 1 to ``noop_max`` (Table 1: 30); 0 disables.
    :param frame_skip: action repeat (Table 1: 4), max over the last two frames.
    :param terminal_on_life_loss: a lost life is terminal for the learner (training: True; evaluation: False).
    :param clip_reward: rewards clipped to their sign (training: True; evaluation reports raw scores: False).
    :param max_episode_frames: truncate after this many emulator frames (evaluation: 18,000); None: no cap.
    :param frame_size: output side (84).
    :param repeat_action_probability: the ALE's sticky actions (paper: 0; Machado et al. 2018: 0.25); None: the env's.
    """

    def __init__(
        self,
        env: gym.Env,
        noop_max: int = NOOP_MAX,
        frame_skip: int = ACTION_REPEAT,
        terminal_on_life_loss: bool = True,
        clip_reward: bool = True,
        max_episode_frames: int | None = None,
        frame_size: int = FRAME_SIZE,
        repeat_action_probability: float | None = 0.0,
    ) -> None:
        set_frame_by_frame(env, repeat_action_probability)
        if noop_max > 0:
            env = NoopResetEnv(env, noop_max=noop_max)
        if max_episode_frames is not None:
            env = EpisodeFrameLimit(env, max_episode_frames)
        if terminal_on_life_loss:
            env = LifeLossTerminal(env, noop_max=max(noop_max, 1))
        if frame_skip > 1:
            env = MaxAndSkipEnv(env, skip=frame_skip)
        env = NatureFrame(env, frame_size)
        if clip_reward:
            env = ClipRewardEnv(env)
        super().__init__(env)


def family_wrapper(env: gym.Env, spec: PreprocessingSpec, max_episode_frames: int | None = None) -> gym.Env:
    """The training wrapper of ``spec``'s family with the evaluation's flags (a lost life is not terminal, raw
    rewards): :class:`NatureAtariWrapper`, or SB3's ``AtariWrapper`` over :class:`EpisodeFrameLimit`."""
    spec.check_supported()
    if spec.wrapper not in WRAPPER_ARGS:
        raise UserError(f"observations used as they are ({spec.wrapper}) have no Atari wrapper")
    kwargs = {arg: getattr(spec, field) for arg, field in WRAPPER_ARGS[spec.wrapper].items() if field is not None}
    kwargs.update(terminal_on_life_loss=False, clip_reward=False)
    if spec.wrapper == NATURE_WRAPPER:
        return NatureAtariWrapper(env, **kwargs, max_episode_frames=max_episode_frames)
    if max_episode_frames is not None:
        env = EpisodeFrameLimit(env, max_episode_frames)
    return AtariWrapper(env, **kwargs)
