"""Play an exported agent with onnxruntime, numpy and ALE alone: no PyTorch, no Stable-Baselines3.

An ``.onnx`` file written by :mod:`sb3_dqn_atari.export` carries, in its ``metadata_props``, everything needed
to rebuild the agent's input: the env id, the action meanings, the observation shape and dtype, the frame
stack, and the preprocessing spec (JSON, :class:`~sb3_dqn_atari.atari.spec.PreprocessingSpec`). :class:`OnnxAgent`
reads them (:class:`AgentMetadata`) and :class:`AtariPlayEnv` rebuilds the evaluation pipeline of the model's
family (NatureAtariWrapper or SB3's AtariWrapper with ``terminal_on_life_loss=False, clip_reward=False``: full
games, raw scores; then ``VecFrameStack`` + ``VecTransposeImage``) frame for frame and byte for byte, in numpy
and OpenCV (:mod:`sb3_dqn_atari.atari.twin`, which says how it is checked).

Actions follow the paper's ε-greedy evaluation policy: with probability ε a uniformly random action,
otherwise the graph's greedy ``action`` output (Methods, "Evaluation procedure": ε = 0.05). ε = 0 is greedy.

Environments whose observations are vectors (e.g. ``CartPole-v1`` with an ``MlpPolicy``) are played through
gymnasium as they are (:class:`VectorPlayEnv`).

A model file is data from whoever wrote it: :class:`OnnxAgent` reads the file once, refuses it if it names
external data (a path onnxruntime would open) or a custom operator domain
(:mod:`sb3_dqn_atari.common.onnx_check`), and gives onnxruntime those checked bytes, never the path. Its ``env_id``
metadata may not name a module to import (``module:Env-v0``) outside
:data:`sb3_dqn_atari.common.sources.ALLOWED_PACKAGES`;
a retired id (``LunarLander-v2``) is played on its successor (:mod:`sb3_dqn_atari.common.env_ids`).
"""

from __future__ import annotations

__all__ = [
    "ACTION_NAME", "INPUT_NAME", "METADATA_FORMAT", "NATURE_WRAPPER", "NO_WRAPPER", "Q_VALUES_NAME", "SB3_WRAPPER",
    "AgentMetadata", "AtariPlayEnv", "EpisodeResult", "OnnxAgent", "PlayEnv", "PlayerError", "PreprocessingSpec",
    "VectorPlayEnv", "first_line", "inference_session",
]

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from sb3_dqn_atari.atari.envs import EpisodeResult
from sb3_dqn_atari.atari.spec import NATURE_WRAPPER, NO_WRAPPER, SB3_WRAPPER, PlayerError, PreprocessingSpec
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.onnx_check import read_checked_onnx
from sb3_dqn_atari.common.trust import UntrustedError, check_env_id
from sb3_dqn_atari.onnx.play_envs import AtariPlayEnv, PlayEnv, VectorPlayEnv

#: Value of the ``format`` metadata key; bump it when the meaning of a key changes.
METADATA_FORMAT = "sb3-dqn-atari/onnx/1"
#: Graph input and output names.
INPUT_NAME = "obs"
Q_VALUES_NAME = "q_values"
ACTION_NAME = "action"
#: onnxruntime's names of numpy's dtypes (``NodeArg.type`` is ``tensor(<name>)``).
ORT_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "float16", "bool": "bool"}


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
        required = ("format", "env_id", "algorithm", "action_meanings", "observation_shape", "observation_dtype")
        if missing := [key for key in required if key not in props]:
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


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, at most 200 characters (onnxruntime's and torch's run over many)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def inference_session(model: str | bytes, intra_op_num_threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session, its log quiet (``model``: a path, or checked bytes); with
    ``intra_op_num_threads``, sequential on that many threads."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


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
        try:
            model_bytes = read_checked_onnx(self.path)  # the bytes onnxruntime gets: checked, read once
        except UserError as exc:
            raise PlayerError(str(exc)) from None
        try:
            self.session = inference_session(model_bytes, intra_op_num_threads)
        except Exception as exc:  # onnxruntime raises its own pybind exception types (InvalidProtobuf, Fail, ...)
            raise PlayerError(
                f"{self.path} is not a readable ONNX model ({exc.__class__.__name__}: {first_line(exc)})"
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
        wanted = f"tensor({ORT_TYPE_NAMES.get(self._dtype.name, self._dtype.name)})"
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
            text = first_line(exc) or exc.__class__.__name__
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
            space, actions = vector.raw.observation_space, vector.raw.action_space
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
        unwrapped: Any = getattr(getattr(env, "env", None), "unwrapped", None)
        noops = int(unwrapped.ale.getEpisodeFrameNumber()) if hasattr(unwrapped, "ale") else None
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
            score, steps, None if frames is None else int(frames), noops, truncated, time.perf_counter() - start
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

