"""What an exported file says about its agent (``metadata_props``): the graph's names, the preprocessing spec the
runtime rebuilds, the agent's env, actions and observations (see :mod:`sb3_dqn_atari.onnx.runtime`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sb3_dqn_atari.atari.preprocessing import FRAME_SIZE, LUMA_WEIGHTS, TRUNCATION_SLACK
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.trust import UntrustedError, check_env_id

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
ORT_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "float16", "bool": "bool"}


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
