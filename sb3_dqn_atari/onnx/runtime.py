"""Play an exported agent with onnxruntime, numpy and ALE alone: no PyTorch, no Stable-Baselines3.

An ``.onnx`` file written by :mod:`sb3_dqn_atari.export` carries, in its ``metadata_props``, everything needed
to rebuild the agent's input: the env id, the action meanings, the observation shape and dtype, the frame
stack, and the preprocessing spec (JSON). :class:`OnnxAgent` reads them and :class:`AtariPlayEnv` rebuilds, in
numpy, the evaluation pipeline the model was trained on::

    DummyVecEnv([NatureAtariWrapper(gym.make(env_id), terminal_on_life_loss=False, clip_reward=False)])
    + VecFrameStack(n_stack=4) + VecTransposeImage

frame for frame and byte for byte (``tests/test_export.py`` checks it on real ALE frames):

* no-op starts: SB3 ``NoopResetEnv``: 1..``noop_max`` single-frame NOOPs drawn from the ALE env's own
  ``np_random`` (Mnih et al. 2015, Methods; ``alewrap``'s ``nextRandomGame``);
* action repeat: SB3 ``MaxAndSkipEnv``: the action is repeated ``frame_skip`` times, the observation is the
  per-pixel maximum of the last two raw RGB frames; its two-slot buffer persists across steps, as SB3's does;
* frame: :func:`sb3_dqn_atari.atari.preprocessing.nature_frame` (luminance, torch7 area "bilinear" 84×84, byte);
* stack: SB3 ``VecFrameStack``: the newest frame last, zeros in place of frames from before the episode
  start (DeepMind's ``TransitionTable`` never mixes episodes either), channel-first.

Actions follow the paper's ε-greedy evaluation policy: with probability ε a uniformly random action,
otherwise the graph's greedy ``action`` output (Methods, "Evaluation procedure": ε = 0.05). ε = 0 is greedy.

Environments whose observations are vectors (e.g. ``CartPole-v1`` with an ``MlpPolicy``) are played through
gymnasium as they are (:class:`VectorPlayEnv`).

A model file is data from whoever wrote it: :class:`OnnxAgent` reads the file once, refuses it if it names
external data (a path onnxruntime would open) or a custom operator domain
(:mod:`sb3_dqn_atari.common.onnx_check`), and gives onnxruntime those checked bytes, never the path. Its ``env_id``
metadata may not name a module to import (``module:Env-v0``) outside
:data:`sb3_dqn_atari.common.trust.ALLOWED_PACKAGES`;
a retired id (``LunarLander-v2``) is played on its successor (:mod:`sb3_dqn_atari.common.env_ids`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ale_py
import gymnasium as gym
import numpy as np
import onnxruntime as ort

from sb3_dqn_atari.atari.envs import make_env
from sb3_dqn_atari.atari.preprocessing import FRAME_SIZE, LUMA_WEIGHTS, TRUNCATION_SLACK, nature_frame
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.onnx_check import read_checked_onnx
from sb3_dqn_atari.common.trust import UntrustedError, check_env_id

gym.register_envs(ale_py)

#: Value of the ``format`` metadata key; bump it when the meaning of a key changes.
METADATA_FORMAT = "sb3-dqn-atari/onnx/1"
#: Graph input and output names.
INPUT_NAME = "obs"
Q_VALUES_NAME = "q_values"
ACTION_NAME = "action"
#: The preprocessing this runtime can rebuild (``PreprocessingSpec.wrapper``).
NATURE_WRAPPER = "NatureAtariWrapper"
NO_WRAPPER = "none"
#: Resampling names recorded in the spec.
TORCH7_AREA = "torch7-area"
#: onnxruntime's names of numpy's dtypes (``NodeArg.type`` is ``tensor(<name>)``).
_ORT_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "float16", "bool": "bool"}


class PlayerError(UserError):
    """A problem the user can fix (missing, unreadable or refused .onnx, missing metadata, an env that cannot be
    made). The ``play`` CLI prints its message on one line and exits with code 2. A
    :class:`~sb3_dqn_atari.common.errors.UserError` (torch-free, as this module)."""


@dataclass(frozen=True)
class PreprocessingSpec:
    """How raw env observations become the network input (JSON in the ``preprocessing`` metadata key).

    The defaults are the Nature DQN's (Mnih et al. 2015, Methods and Extended Data Table 1; DeepMind's
    ``alewrap`` and ``dqn/Scale.lua``). ``wrapper == "none"`` means the env's observations are used as they are.
    """

    wrapper: str = NATURE_WRAPPER
    #: SB3 ``NoopResetEnv``: 1..noop_max single-frame no-ops at every reset (0: none).
    noop_max: int = 30
    noop_action: int = 0
    #: SB3 ``MaxAndSkipEnv``: action repeat, max over the last ``max_pool_frames`` raw frames.
    frame_skip: int = 4
    max_pool_frames: int = 2
    #: ``nature_frame``: Y = w·RGB on the 0–255 scale, torch7 area resize, ``uint8(floor(y + slack))``.
    frame_size: int = FRAME_SIZE
    grayscale: str = "luminance"
    luminance_weights: tuple[float, float, float] = LUMA_WEIGHTS
    resize: str = TORCH7_AREA
    truncation_slack: float = TRUNCATION_SLACK
    #: Stacked frames are channel-first ``(stack, H, W)``; earlier-episode frames are zeros.
    channels_first: bool = True
    stack_padding: str = "zeros"
    #: Inside the graph: ``obs.float() / 255`` (SB3's ``preprocess_obs``).
    scale_in_graph: str = "x/255"
    #: How the model was *trained* (the runtime plays full games with raw scores, the paper's evaluation).
    train_terminal_on_life_loss: bool = True
    train_clip_reward: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PreprocessingSpec:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise PlayerError(f"the preprocessing metadata is not valid JSON ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise PlayerError("the preprocessing metadata is not a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise PlayerError(f"the preprocessing metadata has keys this runtime does not know: {unknown[:5]}")
        defaults = cls()
        for key, value in data.items():
            default = getattr(defaults, key)
            if key == "luminance_weights":
                ok = isinstance(value, list) and len(value) == 3 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
                )
                value = data[key] = tuple(value) if ok else value
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 16
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise PlayerError(f"the preprocessing metadata's {key} = {str(value)[:60]!r} is not a valid value")
        return cls(**data)

    def check_supported(self) -> None:
        """Raise :class:`PlayerError` unless this runtime rebuilds the spec exactly."""
        if self.wrapper == NO_WRAPPER:
            return
        if self.wrapper != NATURE_WRAPPER:
            raise PlayerError(
                f"the model was trained with {self.wrapper}; this runtime rebuilds only {NATURE_WRAPPER}'s "
                "preprocessing (use the graph directly, or retrain with sb3_dqn_atari.zoo.NatureAtariWrapper)"
            )
        problems = []
        if self.grayscale != "luminance" or tuple(self.luminance_weights) != LUMA_WEIGHTS:
            problems.append(f"grayscale {self.grayscale} {self.luminance_weights}")
        if self.resize != TORCH7_AREA:
            problems.append(f"resize {self.resize}")
        if self.truncation_slack != TRUNCATION_SLACK:
            problems.append(f"truncation slack {self.truncation_slack}")
        if self.max_pool_frames != 2 or self.stack_padding != "zeros" or not self.channels_first:
            problems.append("frame pooling / stacking layout")
        if problems:
            raise PlayerError(f"this runtime cannot rebuild the recorded preprocessing: {', '.join(problems)}")


@dataclass(frozen=True)
class AgentMetadata:
    """The ``metadata_props`` of an exported agent, parsed."""

    env_id: str
    algorithm: str
    action_meanings: list[str]
    observation_shape: tuple[int, ...]
    observation_dtype: str
    frame_stack: int
    preprocessing: PreprocessingSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def n_actions(self) -> int:
        return len(self.action_meanings)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "the model") -> AgentMetadata:
        missing = [
            key
            for key in ("format", "env_id", "algorithm", "action_meanings", "observation_shape", "observation_dtype")
            if key not in props
        ]
        if missing:
            raise PlayerError(
                f"{source} lacks the metadata {missing}: export it with `python -m sb3_dqn_atari.export MODEL`"
            )
        if props["format"] != METADATA_FORMAT:
            raise PlayerError(f"{source} has metadata format {props['format']!r}; this runtime reads {METADATA_FORMAT}")
        try:
            check_env_id(props["env_id"], "the env_id metadata", source)
        except UntrustedError as exc:
            raise PlayerError(str(exc)) from None
        try:
            spec_text = props.get("preprocessing", json.dumps({"wrapper": NO_WRAPPER}))
            metadata = cls(
                env_id=props["env_id"],
                algorithm=props["algorithm"],
                action_meanings=[str(a) for a in json.loads(props["action_meanings"])],
                observation_shape=tuple(int(d) for d in json.loads(props["observation_shape"])),
                observation_dtype=str(np.dtype(props["observation_dtype"])),
                frame_stack=int(props.get("frame_stack", "1")),
                preprocessing=PreprocessingSpec.from_json(spec_text),
                env_kwargs=dict(json.loads(props.get("env_kwargs", "{}"))),
                raw=dict(props),
            )
        except (ValueError, TypeError, RecursionError) as exc:
            raise PlayerError(f"{source} has malformed metadata ({exc.__class__.__name__}: {exc})") from exc
        if np.dtype(metadata.observation_dtype).kind not in "uifb":
            raise PlayerError(f"{source} has malformed metadata (observation_dtype {metadata.observation_dtype})")
        if not 1 <= metadata.frame_stack <= 64 or not all(0 < d <= 1 << 16 for d in metadata.observation_shape):
            raise PlayerError(f"{source} has malformed metadata (frame_stack or observation_shape out of range)")
        if not metadata.action_meanings or any(not isinstance(k, str) for k in metadata.env_kwargs):
            raise PlayerError(f"{source} has malformed metadata (no actions, or env_kwargs keys that are not names)")
        return metadata


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


@dataclass
class EpisodeResult:
    """One played episode: raw (unclipped) score, agent steps, emulator frames, whether it was cut short."""

    score: float
    steps: int
    frames: int | None
    truncated: bool
    seconds: float


class OnnxAgent:
    """An exported DQN agent: the ONNX graph plus its metadata.

    :param path: an ``.onnx`` file written by :mod:`sb3_dqn_atari.export`.
    :param intra_op_num_threads: onnxruntime threads per operator (1: one core, the fastest for batch 1 here;
        ``None``: onnxruntime's default).

    >>> agent = OnnxAgent("exported_models/BreakoutNoFrameskip-v4-nature-dqn.onnx")  # doctest: +SKIP
    >>> results = agent.play(episodes=3, seed=0, epsilon=0.05)  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, intra_op_num_threads: int | None = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PlayerError(f"no such file: {self.path}; pass an .onnx written by python -m sb3_dqn_atari.export")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = intra_op_num_threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            model_bytes = read_checked_onnx(self.path)  # the bytes onnxruntime gets: checked, read once
        except UserError as exc:
            raise PlayerError(str(exc)) from None
        try:
            self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind exception types (InvalidProtobuf, Fail, ...)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PlayerError(
                f"{self.path} is not a readable ONNX model ({exc.__class__.__name__}: {first_line[:200]})"
            ) from exc
        try:
            props = dict(self.session.get_modelmeta().custom_metadata_map)
            inputs = {i.name: i for i in self.session.get_inputs()}
            outputs = {o.name for o in self.session.get_outputs()}
        except (UnicodeDecodeError, ValueError, TypeError) as exc:  # strings of the file that are not UTF-8
            raise PlayerError(f"{self.path} has unreadable metadata or names ({exc.__class__.__name__})") from exc
        self.metadata = AgentMetadata.from_props(props, source=str(self.path))
        if INPUT_NAME not in inputs or not {Q_VALUES_NAME, ACTION_NAME} <= outputs:
            raise PlayerError(
                f"{self.path} lacks the input {INPUT_NAME!r} or the outputs {Q_VALUES_NAME!r}/{ACTION_NAME!r}"
            )
        self._dtype = np.dtype(self.metadata.observation_dtype)
        self._check_graph_matches_metadata(inputs[INPUT_NAME], self.session.get_outputs())

    def _check_graph_matches_metadata(self, graph_input: Any, graph_outputs: list[Any]) -> None:
        """The metadata describe the graph's input (dtype, shape after the batch) and the width of ``q_values``."""
        meta = self.metadata
        wanted = f"tensor({_ORT_TYPE_NAMES.get(self._dtype.name, self._dtype.name)})"
        shape = list(graph_input.shape or [])
        dims = shape[1:]
        mismatched = len(dims) != len(meta.observation_shape) or any(
            isinstance(d, int) and d != m for d, m in zip(dims, meta.observation_shape, strict=False)
        )
        if graph_input.type != wanted or mismatched:
            said, takes = f"{meta.observation_dtype} {list(meta.observation_shape)}", f"{graph_input.type} {shape}"
            raise PlayerError(f"{self.path}: the metadata say observations are {said}, the graph takes {takes}")
        q_shape = next((list(o.shape or []) for o in graph_outputs if o.name == Q_VALUES_NAME), [])
        if len(q_shape) == 2 and isinstance(q_shape[1], int) and q_shape[1] != meta.n_actions:
            raise PlayerError(f"{self.path}: the metadata name {meta.n_actions} actions, the graph has {q_shape[1]}")

    def _run(self, output: str, batch: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self.session.run([output], {INPUT_NAME: batch})[0])
        except Exception as exc:  # onnxruntime's own exception types
            text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
            raise PlayerError(f"{self.path}: onnxruntime cannot run the model on this observation ({text})") from exc

    @property
    def env_id(self) -> str:
        return self.metadata.env_id

    def _batch(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=self._dtype)
        if obs.shape == self.metadata.observation_shape:
            obs = obs[None]
        if obs.shape[1:] != self.metadata.observation_shape:
            raise ValueError(f"expected observations of shape {self.metadata.observation_shape}, got {obs.shape}")
        return obs

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``(batch, n_actions)`` of one observation or a batch."""
        return self._run(Q_VALUES_NAME, self._batch(obs))

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions ``(batch,)`` (int64) of one observation or a batch (the graph's ``action`` output)."""
        return self._run(ACTION_NAME, self._batch(obs))

    def act(self, obs: np.ndarray, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> int:
        """ε-greedy action for one observation (Methods: ε = 0.05 in evaluation; 0: greedy)."""
        if epsilon > 0.0:
            if rng is None:
                raise ValueError("pass an rng when epsilon > 0")
            if rng.random() < epsilon:
                return int(rng.integers(self.metadata.n_actions))
        return int(self._run(ACTION_NAME, obs[None])[0])

    def make_env(self, max_episode_frames: int | None = None, render_mode: str | None = None) -> PlayEnv:
        """The env the agent was trained on, with its preprocessing rebuilt from the metadata."""
        meta = self.metadata
        spec = meta.preprocessing
        if spec.wrapper == NO_WRAPPER:
            if max_episode_frames is not None:
                raise PlayerError("a frame limit applies to Atari envs only")
            vector = VectorPlayEnv(meta.env_id, meta.observation_dtype, meta.frame_stack, render_mode, meta.env_kwargs)
            space, actions = vector.env.observation_space, vector.env.action_space
            n = getattr(actions, "n", None)
            stacked = None if space.shape is None else (*space.shape[:-1], space.shape[-1] * meta.frame_stack)
            if n is None or int(n) != meta.n_actions or stacked != meta.observation_shape:
                vector.close()
                raise PlayerError(
                    f"{meta.env_id} observes {space} and acts in {actions}; the model was exported for observations "
                    f"{list(meta.observation_shape)} and {meta.n_actions} actions"
                )
            return vector
        env = AtariPlayEnv(meta.env_id, spec, meta.frame_stack, max_episode_frames, render_mode, meta.env_kwargs)
        expected = (meta.frame_stack, spec.frame_size, spec.frame_size)
        if expected != meta.observation_shape:
            raise PlayerError(
                f"the metadata is inconsistent: frames stack to {expected}, the graph wants {meta.observation_shape}"
            )
        if env.action_meanings != meta.action_meanings:
            raise PlayerError(
                f"{meta.env_id} has actions {env.action_meanings}, the model was exported with {meta.action_meanings}"
            )
        return env

    def play_episode(
        self,
        env: PlayEnv,
        seed: int | None = None,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
        on_frame: Callable[[np.ndarray], None] | None = None,
        on_step: Callable[[np.ndarray, int], None] | None = None,
    ) -> EpisodeResult:
        """Play one episode to its end; ``on_frame`` receives each raw screen, ``on_step`` each (obs, action)."""
        start = time.perf_counter()
        obs = env.reset(seed=seed)
        if on_frame is not None and (screen := env.screen()) is not None:
            on_frame(screen)
        score, steps = 0.0, 0
        info: dict[str, Any] = {}
        while True:
            action = self.act(obs, epsilon, rng)
            if on_step is not None:
                on_step(obs, action)
            obs, reward, terminated, truncated, info = env.step(action)
            score += reward
            steps += 1
            if on_frame is not None and (screen := env.screen()) is not None:
                on_frame(screen)
            if terminated or truncated:
                break
        frames = info.get("episode_frame_number")
        return EpisodeResult(
            score, steps, None if frames is None else int(frames), truncated, time.perf_counter() - start
        )

    def play(
        self,
        episodes: int = 1,
        seed: int | None = 0,
        epsilon: float = 0.0,
        max_episode_frames: int | None = None,
        render_mode: str | None = None,
        on_frame: Callable[[np.ndarray], None] | None = None,
        on_episode: Callable[[int, EpisodeResult], None] | None = None,
    ) -> list[EpisodeResult]:
        """Play ``episodes`` episodes; the env is seeded once, at the first reset (as SB3's ``DummyVecEnv``),
        and ε's random draws come from ``numpy.random.default_rng(seed)``."""
        if not 0.0 <= epsilon <= 1.0:
            raise PlayerError(f"epsilon must be in [0, 1], got {epsilon}")
        rng = np.random.default_rng(seed)
        env = self.make_env(max_episode_frames, render_mode)
        results = []
        try:
            for episode in range(episodes):
                result = self.play_episode(env, seed if episode == 0 else None, epsilon, rng, on_frame)
                results.append(result)
                if on_episode is not None:
                    on_episode(episode, result)
        finally:
            env.close()
        return results


def summarize(results: Sequence[EpisodeResult]) -> dict[str, float]:
    """Mean, (population) standard deviation, min and max score, and agent steps per second."""
    scores = np.array([r.score for r in results], dtype=np.float64)
    steps = sum(r.steps for r in results)
    seconds = sum(r.seconds for r in results)
    return {
        "episodes": float(len(results)),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "min": float(scores.min()),
        "max": float(scores.max()),
        "steps": float(steps),
        "steps_per_second": steps / seconds if seconds > 0 else float("nan"),
    }
